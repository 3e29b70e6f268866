#!/usr/bin/env bash
# Installs the Debian packages Restore builds against (as root, or through sudo); with
# --tests also chromium, the headless browser the test of rrun's HTML report (--report)
# opens it in (the demo and `make install` do not need it).
# Skips apt entirely when everything is already there.
set -euo pipefail
packages=(libprotobuf-c-dev libopenblas-dev libpng-dev libjpeg62-turbo-dev libwebp-dev pkg-config make gcc python3 python3-venv)
case "${1:-}" in
  --tests) packages+=(chromium) ;;
  "") ;;
  *) echo "usage: $0 [--tests]" >&2; exit 2 ;;
esac
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "error: run as root to install ${missing[*]}" >&2; exit 1; }
    as_root=(sudo)
  fi
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "error: swift is not on PATH (Swift 6.2 or newer is required)" >&2; exit 1; }
