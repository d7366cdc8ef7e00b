#!/usr/bin/env bash
# Fuzzing the parsers of user files with libFuzzer (clang; targets in fuzz/).
#
#   scripts/fuzz.sh [seconds-per-target] [target...]   replay, then fuzz each target (default 60 s)
#   scripts/fuzz.sh --replay [target...]               replay only (for CI; same as seconds 0)
#   scripts/fuzz.sh --list                             list the targets
#
# Targets are the names after fuzz_ (safetensors, hf_tokenizer, ...); none given means all.
# First builds build-fuzz (clang, -DGPTQW_FUZZ=ON) when needed, then replays every input of
# fuzz/regressions/<target>/ and the seeds of fuzz/corpus/<target>/ through fuzz_<target>
# (plus the binary seeds and regression inputs fuzz/make_seeds generates, and the sample data's
# files). Then
# each target fuzzes for the given time on a scratch copy of its seed corpus
# (build-fuzz/fuzz-work/<target>/corpus; fuzz/corpus is never written), under nice -n 19,
# with bounded memory (-rss_limit_mb=2048 -malloc_limit_mb=1024) and a per-input time limit per
# target (target_timeout below) tight enough that a superlinear parser fails it.
# A crashing input (crash, sanitizer report, out-of-memory, timeout) is copied to
# fuzz/regressions/<target>/ so that every later replay runs it. Exits non-zero when a replay
# fails or a target found anything.
#
# Environment: BUILD_DIR (default build-fuzz), FUZZ_CXX (default clang++), FUZZ_TIMEOUT (seconds
# per input for every target, instead of target_timeout's), FUZZ_JOBS (build jobs, default 2),
# FUZZ_ARGS (extra libFuzzer flags).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build-fuzz}
CXX_BIN=${FUZZ_CXX:-clang++}
JOBS=${FUZZ_JOBS:-2}
# Per-input time limit in seconds (libFuzzer's -timeout): about five times what the slowest
# input of the replay takes under the sanitizers (the 1 MB "timeout-quadratic-*" regression
# inputs: 0.3 - 0.6 s), and far below what a quadratic step costs on them: 480 KB of
# [{},{},...] took 42 s with the old JSON depth callback (1 MB: minutes), a 60,000-character
# run against a 60,001-character added token ~2 * 10^9 trie steps. Inputs the fuzzer makes are
# at most 64 KB.
target_timeout() {
  if [ -n "${FUZZ_TIMEOUT:-}" ]; then echo "$FUZZ_TIMEOUT"; return; fi
  case "$1" in
    hf_tokenizer) echo 5 ;;  # loads, then encodes the whole input with every pipeline step
    *) echo 3 ;;
  esac
}
limits() { echo -rss_limit_mb=2048 -malloc_limit_mb=1024 "-timeout=$(target_timeout "$1")"; }
# Replays measure CPU time, not wall-clock time: on a machine shared with other work a process
# at nice 19 can wait for seconds, and a wall-clock limit would then fail inputs that are fast.
# The limit is the target's time per input (plus a second of start-up), through the process's
# RLIMIT_CPU; libFuzzer's own -timeout is set far above it.
replay_limits() {
  echo -rss_limit_mb=2048 -malloc_limit_mb=1024 "-timeout=$(( $(target_timeout "$1") * 20 ))"
}
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

all_targets() {
  for f in "$ROOT"/fuzz/fuzz_*.cpp; do
    f=${f##*/fuzz_}
    echo "${f%.cpp}"
  done
}

SECONDS_PER_TARGET=60
case "${1:-}" in
  --list) all_targets; exit 0 ;;
  --replay) SECONDS_PER_TARGET=0; shift ;;
  -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  '' ) ;;
  *)
    if [[ $1 =~ ^[0-9]+$ ]]; then SECONDS_PER_TARGET=$1; shift; fi ;;
esac
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || mapfile -t TARGETS < <(all_targets)
# No model-like file lives in the repository: binary seeds and regression inputs are written
# by fuzz/make_seeds into $GEN when the targets are built, and the real model, tokenizers and
# checkpoints are taken from the sample data folder at run time.
DATA_DIR=${GPTQW_DATA_DIR:-$ROOT/../shared/data}
GEN=$ROOT/$BUILD_DIR/fuzz-generated
data_seeds() {
  local m=$DATA_DIR/models/stories260K
  case "$1" in
    hf_config) ls "$m/config.json" ;;
    # Only the sample model's: the 2-9 MB GPT-2 / Llama 3 / Qwen3 files take longer than the
    # per-input timeout to load under the sanitizers, and fuzzing cuts inputs to 64 KB anyway.
    hf_tokenizer) ls "$m/tokenizer.json" ;;
    safetensors) ls "$m/model.safetensors" ;;
    llama2c) ls "$m"/llama2c/*.bin | grep -v tok ;;
    llama2c_tokenizer) ls "$m"/llama2c/tok*.bin ;;
  esac 2>/dev/null || true
}
# Every file of the given folders, one per line, sorted.
files_in() { find "$@" -type f ! -name '.*' 2>/dev/null | sort; }
seed_files() { files_in "fuzz/corpus/$1" "$GEN/corpus/$1"; data_seeds "$1"; }
regression_files() { files_in "fuzz/regressions/$1" "$GEN/regressions/$1"; }

for t in "${TARGETS[@]}"; do
  if [ ! -f "fuzz/fuzz_$t.cpp" ]; then
    echo "fuzz.sh: no target '$t' (known: $(all_targets | tr '\n' ' '))" >&2
    exit 2
  fi
done

# --- build -------------------------------------------------------------------------------------
# clang with its libFuzzer and sanitizer runtimes, and its OpenMP.
[ -n "${FUZZ_CXX:-}" ] || scripts/apt_install.sh clang libclang-rt-14-dev libomp-dev ||
  { echo "fuzz.sh: could not install clang (libFuzzer needs it)" >&2; exit 2; }
if ! command -v "$CXX_BIN" >/dev/null; then
  echo "fuzz.sh: $CXX_BIN not found: libFuzzer needs clang (apt-get install clang libclang-rt-14-dev libomp-dev)" >&2
  exit 2
fi
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  nice -n 19 cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_CXX_COMPILER="$CXX_BIN" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGPTQW_FUZZ=ON -DGPTQW_GUI=OFF -DGPTQW_TESTS=OFF \
    -DGPTQW_NATIVE=OFF >/dev/null || { echo "fuzz.sh: configure failed" >&2; exit 2; }
fi
build_targets=(make_seeds)
for t in "${TARGETS[@]}"; do build_targets+=("fuzz_$t"); done
nice -n 19 cmake --build "$BUILD_DIR" -j "$JOBS" --target "${build_targets[@]}" |
  grep -vE '^\[[0-9]+/[0-9]+\] (Building|Linking)'
if [ "${PIPESTATUS[0]}" -ne 0 ]; then
  echo "fuzz.sh: build failed" >&2
  exit 2
fi

rm -rf "$GEN"
"$BUILD_DIR/fuzz/make_seeds" "$GEN" || { echo "fuzz.sh: make_seeds failed" >&2; exit 2; }

WORK=$ROOT/$BUILD_DIR/fuzz-work
# The targets write their inputs to files under $TMPDIR (per-process folders, left behind when
# a run crashes): keep them in the build tree and clear them at the end.
export TMPDIR=$WORK/tmp
mkdir -p "$WORK" "$TMPDIR"
trap 'rm -rf "$TMPDIR"' EXIT
status=0
summary=()

# --- replay ------------------------------------------------------------------------------------
# One process per regression input, so that every failing one is named; the seeds in one go.
replay_one() {  # target log inputs...
  local bin=$ROOT/$BUILD_DIR/fuzz/fuzz_$1 log=$2
  local -a lim
  read -r -a lim <<<"$(replay_limits "$1")"
  local cpu=$(( $(target_timeout "$1") * ($# - 2) + 1 ))
  shift 2
  ( ulimit -t "$cpu" && exec nice -n 19 "$bin" "${lim[@]}" "$@" ) >"$log" 2>&1
  local rc=$?
  # SIGXCPU (24) ends the process at the CPU limit.
  [ $rc -eq $((128 + 24)) ] && echo "ERROR: over the CPU time limit of ${cpu} s" >>"$log"
  return $rc
}
for t in "${TARGETS[@]}"; do
  n=0
  failed=()
  while IFS= read -r f; do
    n=$((n + 1))
    log=$WORK/$t.replay.${f##*/}.log
    if replay_one "$t" "$log" "$f"; then
      rm -f "$log"
    else
      failed+=("$f")
      echo "---- fuzz_$t fails on $f (log $log):"
      grep -E 'ERROR|FINDING|runtime error|SUMMARY' "$log" | head -4
    fi
  done < <(regression_files "$t")
  mapfile -t seeds < <(seed_files "$t")
  if [ ${#seeds[@]} -gt 0 ]; then
    n=$((n + ${#seeds[@]}))
    log=$WORK/$t.replay.seeds.log
    if ! replay_one "$t" "$log" "${seeds[@]}"; then
      failed+=("$(grep -oE 'Running: [^ ]+' "$log" | tail -1 | cut -c10-)")
      echo "---- fuzz_$t fails on a seed (log $log):"
      grep -E 'ERROR|FINDING|runtime error|SUMMARY|Running:' "$log" | tail -5
    fi
  fi
  if [ ${#failed[@]} -gt 0 ]; then
    status=1
    summary+=("$(printf '%-18s replay: %d inputs, FAILED on %s' "$t" "$n" "${failed[*]}")")
  else
    summary+=("$(printf '%-18s replay: %d inputs ok' "$t" "$n")")
  fi
done

# --- fuzz --------------------------------------------------------------------------------------
if [ "$SECONDS_PER_TARGET" -gt 0 ]; then
  for t in "${TARGETS[@]}"; do
    bin=$ROOT/$BUILD_DIR/fuzz/fuzz_$t
    corpus=$WORK/$t/corpus
    artifacts=$WORK/$t/artifacts
    rm -rf "$artifacts"
    mkdir -p "$corpus" "$artifacts"
    # The scratch corpus keeps what earlier runs found; the seeds are added on top.
    seed_files "$t" | while IFS= read -r f; do cp -f "$f" "$corpus/seed-${f//\//_}"; done
    dict=()
    [ -f "fuzz/dict/$t.dict" ] && dict=("-dict=$ROOT/fuzz/dict/$t.dict")
    log=$WORK/$t.fuzz.log
    echo "---- fuzz_$t for ${SECONDS_PER_TARGET}s (log $log)"
    read -r -a lim <<<"$(limits "$t")"
    # shellcheck disable=SC2086
    nice -n 19 "$bin" "${lim[@]}" "${dict[@]}" -max_len=65536 \
      -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 \
      -artifact_prefix="$artifacts/" ${FUZZ_ARGS:-} "$corpus" >"$log" 2>&1
    rc=$?
    execs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | awk '{print $2}' | tail -1)
    rate=$(grep -oE 'stat::average_exec_per_sec: +[0-9]+' "$log" | awk '{print $2}' | tail -1)
    newu=$(grep -oE 'stat::new_units_added: +[0-9]+' "$log" | awk '{print $2}' | tail -1)
    found=()
    for a in "$artifacts"/*; do
      [ -f "$a" ] || continue
      mkdir -p "fuzz/regressions/$t"
      cp "$a" "fuzz/regressions/$t/"
      found+=("fuzz/regressions/$t/${a##*/}")
    done
    if [ $rc -ne 0 ] || [ ${#found[@]} -gt 0 ]; then
      status=1
      what=$(grep -m1 -E 'ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)|runtime error|FINDING' "$log" | cut -c1-160)
      summary+=("$(printf '%-18s fuzz: %s execs (%s/s), %s new units, FINDING: %s -> %s' "$t" "${execs:-?}" "${rate:-?}" "${newu:-?}" "${what:-exit $rc}" "${found[*]:-no artifact}")")
      echo "---- fuzz_$t found something:"
      grep -E 'ERROR|FINDING|runtime error|SUMMARY|#[0-9]+ 0x' "$log" | head -25
    else
      summary+=("$(printf '%-18s fuzz: %s execs (%s/s), %s new units, no findings' "$t" "${execs:-?}" "${rate:-?}" "${newu:-?}")")
    fi
  done
fi

echo
echo "==== fuzz summary"
printf '%s\n' "${summary[@]}"
exit $status
