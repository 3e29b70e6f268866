#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ and runs one of them (fuzz/README.md).
#
#   scripts/fuzz.sh TARGET [SECONDS]     TARGET: onnx | rgraph | plan | png | jpeg | webp | npy | safetensors
#   scripts/fuzz.sh smoke [RUNS]         every target: its committed corpus, then RUNS
#                                        (default 2000) mutations each; what CI runs
#
# The seed corpus is the target's committed corpus (fuzz/corpus/TARGET, kept small with
# libFuzzer's -merge=1 after long runs) plus Tests/Fixtures: ONNX models, PNG images and
# .npy arrays and safetensors files as they are; for rgraph and plan, every fixture ONNX model converted with the
# project's own `convert` (built here in debug if missing). The corpus a run grows and crash
# artifacts live under $FUZZ_WORK (default $TMPDIR/restore-fuzz/TARGET, TMPDIR defaulting
# to /tmp) and persist between runs, never in the repo.
# Extra libFuzzer flags can be passed in FUZZ_FLAGS.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

target=${1:-}
seconds=${2:-60}
targets=(onnx rgraph plan png jpeg webp npy safetensors)
if [ "$target" = smoke ]; then
  # Each target over its committed corpus and a few thousand mutations: a crash, leak or
  # hang that a reader change brings back shows here, in minutes.
  for each in "${targets[@]}"; do
    FUZZ_WORK="${TMPDIR:-/tmp}/restore-fuzz-smoke/$each" FUZZ_FLAGS="-runs=${2:-2000} ${FUZZ_FLAGS:-}" \
      "$0" "$each" 600
  done
  exit 0
fi
case "$target" in
  onnx) product=FuzzONNX ;;
  rgraph) product=FuzzRGraph ;;
  plan) product=FuzzPlan ;;
  png) product=FuzzPNG ;;
  jpeg) product=FuzzJPEG ;;
  webp) product=FuzzWebP ;;
  npy) product=FuzzNPY ;;
  safetensors) product=FuzzSafetensors ;;
  *) echo "usage: scripts/fuzz.sh onnx|rgraph|plan|png|jpeg|webp|npy|safetensors [SECONDS] | smoke [RUNS]" >&2; exit 2 ;;
esac

# Swift code gets coverage and ASan from -sanitize, the C targets (CONNX, CImageIO) from
# -fsanitize=fuzzer-no-link. Linked with lld: gold fails with an internal error on
# libFuzzer's main next to the Swift executable's own (whose main runs libFuzzer).
build=(swift build -c release --package-path fuzz -Xswiftc -sanitize=fuzzer,address
       -Xcc -fsanitize=fuzzer-no-link,address -Xswiftc -use-ld=lld)
# FUZZ_SKIP_BUILD=1 runs what is built: a long run is not rebuilt under it when sources change.
[ -n "${FUZZ_SKIP_BUILD:-}" ] || "${build[@]}" --product "$product"
binary=$("${build[@]}" --show-bin-path)/$product

work=${FUZZ_WORK:-${TMPDIR:-/tmp}/restore-fuzz/$target}
seeds=$work/seeds
mkdir -p "$work/corpus" "$work/artifacts" "$seeds"
# Models are the slow inputs: one execution of a 860 KB Swin .rgraph spends ~200 ms decoding its
# 1500-node JSON header, so a run among such seeds managed ~470 executions/s. Model targets keep
# seeds and mutations within 64 KiB, which still holds every op kind (the golden cases) and
# every small model; the image and tensor readers take any fixture below 1 MB.
case "$target" in
  onnx | rgraph | plan) max_len=65536 ;;
  *) max_len=1000000 ;;
esac
seed_files() { find Tests/Fixtures -type f -name "$1" -size -"$((max_len / 1024))"k; }
if [ -d "fuzz/corpus/$target" ]; then
  for f in fuzz/corpus/"$target"/*; do cp "$f" "$seeds/committed_$(basename "$f")"; done
fi
case "$target" in
  onnx) seed_files '*.onnx' | while read -r f; do cp "$f" "$seeds/$(echo "$f" | tr / _)"; done ;;
  png) seed_files '*.png' | while read -r f; do cp "$f" "$seeds/$(echo "$f" | tr / _)"; done ;;
  webp) seed_files '*.webp' | while read -r f; do cp "$f" "$seeds/$(echo "$f" | tr / _)"; done ;;
  npy) seed_files '*.npy' | while read -r f; do cp "$f" "$seeds/$(echo "$f" | tr / _)"; done ;;
  # The reader's own fixtures (every dtype, two shards): a few hundred bytes each, so mutations
  # run fast; the model checkpoints add nothing the header checks do not already see.
  safetensors) find Tests/Fixtures/safetensors -type f -name '*.safetensors' | while read -r f; do
      cp "$f" "$seeds/$(echo "$f" | tr / _)"; done ;;
  rgraph | plan)
    if [ -z "$(ls "$seeds" | grep -v '^committed_' || true)" ]; then
      swift build --product convert
      convert=$(swift build --show-bin-path)/convert
      seed_files '*.onnx' | while read -r f; do
        name=$(echo "$f" | tr / _)
        "$convert" "$f" -o "$seeds/$name.rgraph" >/dev/null 2>&1 || true
        "$convert" "$f" -o "$seeds/$name.f16.rgraph" --weights f16 --range=-1,1 --tile 64 --overlap 8 \
          >/dev/null 2>&1 || true
      done
      # Weights stored packed for the kernels (format 1.2): the model fixtures with 3×3
      # convolutions of 8 or more channels (esrgan, condnet) hold Winograd-domain values.
      find Tests/Fixtures/models -type f -name '*.onnx' -size -1000k | while read -r f; do
        "$convert" "$f" -o "$seeds/$(echo "$f" | tr / _).prepared.rgraph" --prepare native --tile 64 >/dev/null 2>&1 || true
      done
    fi ;;
esac
# A seed longer than -max_len would be cut short, so it is left out instead (a converted model
# can be larger than its ONNX file).
find "$seeds" -type f -size +"$((max_len / 1024))"k -delete
# JSON tokens help mutations of the .rgraph header.
dict=()
case "$target" in
  rgraph | plan) dict=(-dict="$root/fuzz/rgraph.dict") ;;
  safetensors) dict=(-dict="$root/fuzz/safetensors.dict") ;;
esac
echo "fuzz: $product for ${seconds}s, $(ls "$seeds" | wc -l) seeds, work dir $work"

# The targets look for memory-safety errors, leaks (-detect_leaks=1: libFuzzer checks an input
# whose mallocs and frees do not balance with LeakSanitizer), hangs (-timeout) and huge
# allocations (-rss_limit_mb).
export SWIFT_BACKTRACE=enable=no  # the Swift backtracer reads memory ASan flags
# Return freed memory to the system and keep a smaller quarantine: after a few large (but
# legal) values the process's RSS otherwise creeps past -rss_limit_mb with a small live heap.
export ASAN_OPTIONS=${ASAN_OPTIONS:-allocator_release_to_os_interval_ms=500:quarantine_size_mb=64}
cd "$work"
# shellcheck disable=SC2086
exec "$binary" corpus seeds -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -max_len="$max_len" -detect_leaks=1 -print_final_stats=1 -artifact_prefix="$work/artifacts/" "${dict[@]}" ${FUZZ_FLAGS:-}
