#!/usr/bin/env bash
# libRestore's exported names come from one place: the functions declared in restore.h.
#
#   scripts/library-exports.sh names            those function names, one a line
#   scripts/library-exports.sh version-script   a linker version script exporting exactly
#                                               them (the Makefile links libRestore with it)
#   scripts/library-exports.sh check LIBRARY    fails, listing them, when LIBRARY exports a
#                                               defined symbol restore.h does not declare
#                                               (Swift symbols, the C kernels, libpng glue)
#                                               or lacks one it declares
#
# Why a version script: the library is the CAPI target linked with the Format and Runtime
# object files, whose public Swift symbols would otherwise all be exported. SwiftPM sets
# linker flags only through unsafeFlags, which Package.swift does not use (SwiftPM before
# 6.2 refuses them in a versioned dependency, and a path in them depends on the working
# directory), so the flag goes on the Makefile's build command.
set -euo pipefail
cd "$(dirname "$0")/.."
header=Sources/CRestore/include/restore.h

# A declaration starts a line with its return type, then `restore_name(`; comment lines
# in restore.h are indented or start with "/*", so they never match.
names() {
    grep -oE '^[A-Za-z_][A-Za-z0-9_ *]*[ *]restore_[a-z0-9_]+\(' "$header" |
        sed -E 's/.*[ *](restore_[a-z0-9_]+)\($/\1/' | sort -u
}

case "${1:-}" in
names)
    names
    ;;
version-script)
    echo "/* Generated from $header by scripts/library-exports.sh: do not edit. */"
    echo "{"
    echo "  global:"
    names | sed 's/^/    /; s/$/;/'
    echo "  local: *;"
    echo "};"
    ;;
check)
    library="${2:?usage: $0 check LIBRARY}"
    declared="$(names)"
    # Defined dynamic symbols that other objects can bind to: global or weak. (gold also
    # lists some symbols the version script made local in .dynsym; those are not exported.)
    exported="$(readelf --dyn-syms -W "$library" |
        awk '$1 ~ /^[0-9]+:$/ && $7 != "UND" && ($5 == "GLOBAL" || $5 == "WEAK") { print $8 }' |
        sed 's/@.*//' | sort -u)"
    undeclared="$(comm -23 <(echo "$exported") <(echo "$declared"))"
    missing="$(comm -13 <(echo "$exported") <(echo "$declared"))"
    echo "$library: $(echo "$exported" | grep -c .) exported symbols, $(echo "$declared" | grep -c .) functions in restore.h" >&2
    if [[ -n "$undeclared" || -n "$missing" ]]; then
        [[ -n "$undeclared" ]] && echo "exported but not in restore.h ($(echo "$undeclared" | wc -l)):" >&2 &&
            echo "$undeclared" | head -20 | sed 's/^/  /' >&2
        [[ -n "$missing" ]] && echo "in restore.h but not exported:" >&2 && echo "$missing" | sed 's/^/  /' >&2
        exit 1
    fi
    ;;
*)
    echo "usage: $0 names | version-script | check LIBRARY" >&2
    exit 2
    ;;
esac
