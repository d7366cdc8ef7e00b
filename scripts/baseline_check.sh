#!/bin/bash
# The same numbers from a portable build: builds the core, the CLI and the unit/data tests for
# the x86-64 baseline (GPTQW_NATIVE=OFF: no -march=native, as packages are built) into
# build-baseline/ and runs those tests (the same pinned numbers as the native build's) with the
# AVX2 kernels forced (GPTQW_KERNELS=avx2) where the CPU has AVX2: what a portable build runs on
# an AVX2 machine without AVX-512, while the native build's tests ran the CPU's best level. Then
# runs the README's main job with both builds (the baseline's on the same kernels), every module
# quantized (--pad-unloadable), and requires byte-identical checkpoints and equal perplexities.
#   scripts/baseline_check.sh [native-build-dir] [data-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
native=${1:-build}
data=${2:-${GPTQW_DATA_DIR:-../shared/data}}
base=${GPTQW_BASELINE_BUILD:-build-baseline}
cmake -S . -B "$base" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGPTQW_NATIVE=OFF -DGPTQW_GUI=OFF \
  -DGPTQW_WERROR=ON ${GPTQW_CMAKE_ARGS:-}
cmake --build "$base" --target gptqw_tests
kernels=generic
grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo && kernels=avx2
echo "baseline_check: the baseline build's tests with GPTQW_KERNELS=$kernels"
GPTQW_KERNELS=$kernels ctest --test-dir "$base" -L "unit|data" --output-on-failure

tmp=$(mktemp -d /tmp/gptqw-baseline.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
for b in "$native" "$base"; do
  tag=$(basename "$b")
  [ "$b" = "$base" ] && export GPTQW_KERNELS=$kernels
  "$b/app/gptqw" compare --model "$data/models/stories260K" \
    --calib "$data/text/tinystories-sample.txt" --nsamples 128 --seqlen 256 \
    --bits 4 --group-size 32 --act-order --pad-unloadable \
    --eval "$data/text/tinystories-sample.txt" --eval-seqlen 512 --eval-max-windows 64 \
    --report "$tmp/$tag.json" --out "$tmp/$tag" --quiet
  echo "$tag: $(grep -o '"kernels": *"[a-z0-9]*"' "$tmp/$tag.json"), build target" \
       "$(grep -o '"build_target": *"[^"]*"' "$tmp/$tag.json")"
done
# The perplexities: the "original", "rtn" and "gptq" fields of the report's "perplexity" object
# (other objects have "gptq" and "rtn" fields too: timings).
ppl() {
  sed -n '/^ *"perplexity": {/,/}/p' "$1" | grep -oE '"(original|rtn|gptq)": *[0-9][0-9.e+-]*' |
    tr '\n' ' '
}
a=$(ppl "$tmp/$(basename "$native").json")
b=$(ppl "$tmp/$(basename "$base").json")
echo "perplexity (original rtn gptq): native $a, baseline $b"
[ -n "$a" ] || { echo "baseline_check: no perplexities in the native build's report"; exit 1; }
[ "$a" = "$b" ] || { echo "baseline_check: the two builds' perplexities differ"; exit 1; }
cmp "$tmp/$(basename "$native")/model.safetensors" "$tmp/$(basename "$base")/model.safetensors"
echo "baseline_check: the baseline build passes the unit and data tests, and its checkpoint is" \
     "byte-identical to the native build's"
