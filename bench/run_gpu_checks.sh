#!/usr/bin/env bash
# Everything only a GPU machine can show, in one run: a build, the GPU tests (the CUDA
# backend against the CPU backend, and the engine and pipeline suites on backend cuda),
# bench_gpu, sluice-bench's YSB and word count on sluice-gpu, and compute-sanitizer memcheck
# and racecheck on the CUDA backend tests.
#
# The steps run in the order of what matters most, each under its own time limit inside a
# total deadline (SLUICE_GPU_CHECK_SECONDS, default 540 s), so that a run cut short still
# leaves the results of every step before. SLUICE_GPU_CHECK_ONLY (a comma list of tests,
# bench, sluice-bench, memcheck, racecheck, profile; default all but profile) runs some of
# them, e.g. a second call on the still warm machine, whose build-gpu/ is kept and rebuilds
# in seconds, with SLUICE_GPU_CHECK_ONLY=racecheck SLUICE_GPU_RACECHECK_SECONDS=500 or
# SLUICE_GPU_CHECK_ONLY=profile (ncu on the hash strategy's block kernel, and the kernel times
# of word count and of reduceByKey at 1k keys). $OUT (default
# gpu-checks/) gets at most 8 files, the device tool's limit, each rewritten as soon as its
# step ends:
#   summary.txt             one or more lines per step (read this first)
#   ctest-gpu.log           the GPU tests
#   bench_gpu.json/.txt     the benchmarks against their bounds (the JSON is written per section)
#   sluice-bench-results.md sluice-cpu against sluice-gpu, end to end
#   sanitizer-memcheck.log  compute-sanitizer memcheck
#   logs.tgz                everything else: the build log, nvidia-smi, racecheck, sluice-bench's files
#
# Prepare on a machine with a package registry, then carry .deps to the GPU host:
#   EXTRA_DEBS="libyaml-cpp-dev libyaml-cpp0.7 nlohmann-json3-dev pkgconf pkgconf-bin libpkgconf3 libsasl2-2 libsasl2-modules-db" \
#     ../shared/gpu-host/pack-deps.sh
#   bench/run_gpu_checks.sh            # on the GPU host, from the project root
set -u
out=${OUT:-gpu-checks}
mkdir -p "$out"
out=$(cd "$out" && pwd)  # absolute: the steps below change directory
cd "$(dirname "$0")/.."
logs=$(mktemp -d)
summary="$out/summary.txt"
: > "$summary"
deadline=$((SECONDS + ${SLUICE_GPU_CHECK_SECONDS:-540}))

say() { echo "$*" | tee -a "$summary"; }
# Whether step $1 is to run (SLUICE_GPU_CHECK_ONLY).
wanted() { [ -z "${SLUICE_GPU_CHECK_ONLY:-}" ] || [[ ",$SLUICE_GPU_CHECK_ONLY," == *",$1,"* ]]; }
# Whether step $1, which runs only when asked for, is named in SLUICE_GPU_CHECK_ONLY.
asked_for() { [[ ",${SLUICE_GPU_CHECK_ONLY:-}," == *",$1,"* ]]; }
# Seconds a step may take: at most $1, and no later than $2 seconds before the deadline.
budget() {
  local room=$((deadline - SECONDS - ${2:-0}))
  if [ "$room" -lt "$1" ]; then echo "$room"; else echo "$1"; fi
}
pack() { tar -C "$logs" -czf "$out/logs.tgz" . 2>/dev/null; }
step() { say "== $* (at $(date +%T), $((deadline - SECONDS)) s left)"; }
# Runs a step's command under `timeout $1`, saying how it ended.
timed() {
  local seconds=$1 name=$2
  shift 2
  if [ "$seconds" -le 5 ]; then
    say "$name: not run, the deadline is too close"
    return 124
  fi
  timeout --kill-after=10 "$seconds" "$@"
  local rc=$?
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then say "$name: stopped at its limit of $seconds s"; fi
  return $rc
}

if [ -f .deps/env.sh ]; then
  # shellcheck disable=SC1091
  source .deps/env.sh
fi
prefix=()
if [ -n "${SLUICE_DEPS_PREFIX:-}" ]; then
  prefix=(-DCMAKE_PREFIX_PATH="$SLUICE_DEPS_PREFIX")
  export PATH="$SLUICE_DEPS_PREFIX/bin:$PATH"  # pkg-config, when the image has none
fi

step "device"
nvidia-smi > "$logs/nvidia-smi.txt" 2>&1
say "$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)"
for tool in cmake nvcc pkg-config python3; do
  command -v "$tool" > /dev/null || say "missing: $tool (the build or a step below will fail)"
done

step "build"
# Only what the GPU checks run: the host-only tests are CI's.
targets=(test_cuda_backend test_device_functors test_backend_choice test_dstream_ops test_windows test_context
         test_smoke_typed test_cli sluice_cli bench_gpu sluice_bench_runner)
{ timed "$(budget 90 300)" configure cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release "${prefix[@]}" &&
  timed "$(budget 360 240)" build cmake --build build-gpu -j"$(nproc)" --target "${targets[@]}"; } > "$logs/build.log" 2>&1
built=$?
if [ $built -ne 0 ]; then
  say "build failed (exit $built):"
  tail -30 "$logs/build.log" | tee -a "$summary"
  pack
  exit 1
fi
say "built in $SECONDS s"

# A build that sees no device would skip every GPU test: say so at once.
if build-gpu/tests/test_backend_choice --gtest_filter='BackendChoice.CudaOnAGpu*' 2>&1 | grep -q SKIPPED; then
  say "THE BUILD SEES NO GPU: every GPU test would be skipped (driver too old for this CUDA?)"
  build-gpu/tests/test_backend_choice --gtest_filter='BackendChoice.CudaOnAGpu*' >> "$summary" 2>&1
  pack
  exit 1
fi

sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)

if wanted tests; then
step "GPU tests"
(cd build-gpu && timed "$(budget 200 100)" "GPU tests" ctest -j8 --timeout 120 --output-on-failure \
   -R 'Cuda|cuda/|BackendChoice|DeviceFunctors' > "$out/ctest-gpu.log" 2>&1)
say "ctest exit $?: $(grep -E 'tests passed|tests failed' "$out/ctest-gpu.log")"
say "skipped: $(grep -c '(Skipped)' "$out/ctest-gpu.log")"
grep -E '\((Failed|Timeout|SEGFAULT|Subprocess aborted|Exception|Not Run)\)' "$out/ctest-gpu.log" | head -40 | tee -a "$summary"
fi

if wanted bench; then
step "bench_gpu"
timed "$(budget 150 50)" bench_gpu build-gpu/bench/bench_gpu --out "$out/bench_gpu.json" > "$out/bench_gpu.txt" 2>&1
say "bench_gpu exit $?"
cat "$out/bench_gpu.txt" >> "$summary"
fi

if wanted sluice-bench; then
step "sluice-bench: YSB and word count end to end, sluice-gpu against sluice-cpu"
timed "$(budget 120 40)" sluice-bench python3 bench/sluice-bench --mode quick --workload ysb,wordcount \
  --engines sluice-cpu,sluice-gpu --latency-fraction 0 --timeout 120 --strict \
  --runner build-gpu/bench/sluice-bench-runner --out "$logs/sluice-bench" > "$logs/sluice-bench.log" 2>&1
say "sluice-bench exit $?"
if [ -f "$logs/sluice-bench/results.md" ]; then
  cp "$logs/sluice-bench/results.md" "$out/sluice-bench-results.md"
  grep -E '^\| [a-z]+ \| sluice-(cpu|gpu) \|' "$out/sluice-bench-results.md" | tee -a "$summary"
else
  tail -12 "$logs/sluice-bench.log" | tee -a "$summary"
fi
pack
fi

if wanted memcheck; then
step "compute-sanitizer memcheck"
# The edge sizes (no rows, one row: zero-size allocations), the small shapes of every key
# kind, the hand-written parsers, float texts written into the register file, exact window
# keys, and the engine's own paths (prefetch, copy back).
small='*/FewInts_0_rows:*/FewInts_1_rows:*/FewInts_4097_rows:*/ManyInts_7_rows:*/Strings_1_rows:*/NullableStringAndInt_999_rows:*/Floats_5003_rows'
engine='CudaCsvParsing.*:CudaJsonParsing.*:CudaWordCount.*:CudaSplit.*:CudaEngine.*:CudaExpressions.*:CudaWindows.*'
timed "$(budget 150 10)" memcheck "$sanitizer" --tool memcheck --error-exitcode 99 build-gpu/tests/test_cuda_backend \
  --gtest_filter="$small:$engine" > "$out/sanitizer-memcheck.log" 2>&1
say "memcheck exit $?: $(grep -E 'ERROR SUMMARY' "$out/sanitizer-memcheck.log" | tail -1); $(grep -E '^\[  (PASSED|FAILED) ' "$out/sanitizer-memcheck.log" | tr '\n' ' ')"
fi

if wanted racecheck; then
step "compute-sanitizer racecheck"
# Shared memory of the kernels' own is the hash strategy's per-block tables (BlockHashFold),
# which few keys choose, besides CUB's and Thrust's: two shapes of few keys. On the H200 the
# first run's 60 s did not finish them; the whole script had taken 378 s then.
timed "$(budget "${SLUICE_GPU_RACECHECK_SECONDS:-200}" 0)" racecheck "$sanitizer" --tool racecheck --error-exitcode 99 build-gpu/tests/test_cuda_backend \
  --gtest_filter='*/FewInts_4097_rows:*/Floats_5003_rows' > "$logs/sanitizer-racecheck.log" 2>&1
say "racecheck exit $?: $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$logs/sanitizer-racecheck.log" | tail -1)"
fi

if asked_for profile; then
step "ncu: the hash strategy's block kernel at 1k keys"
# The first block-kernel launch of bench_gpu is reduceByKey's over 1k keys; ncu profiles
# that one launch (its replays take most of the time) and lets the rest of the section run.
ncu_bin=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
timed "$(budget 300 0)" profile "$ncu_bin" -k regex:run_block_phases -c 1 --section SpeedOfLight --section MemoryWorkloadAnalysis \
  --section WarpStateStats --section SourceCounters --section LaunchStats --section Occupancy \
  build-gpu/bench/bench_gpu --only reduce --out "$logs/bench-under-ncu.json" \
  > "$logs/ncu-block-kernel.txt" 2>&1
say "ncu exit $?"
grep -E '^ +(Duration|DRAM Throughput|Memory Throughput|Compute \(SM\) Throughput|Registers Per Thread|Achieved Occupancy|Avg\. Active Threads Per Warp|Avg\. Not Predicated Off Threads Per Warp|Warp Cycles Per Issued Instruction|Executed Instructions) ' \
  "$logs/ncu-block-kernel.txt" | tee -a "$summary"

# Where the time of word count and of reduceByKey at 1k keys goes, kernel by kernel: ncu
# measures each launch alone (one metric, one pass), bench/kernel_times.py sums them by kernel.
for workload in "wordcount 150" "reduce 90"; do
  set -- $workload
  step "ncu: kernel times of bench_gpu --only $1 (its first $2 launches)"
  timed "$(budget 150 0)" "profile $1" "$ncu_bin" --metrics gpu__time_duration.sum --csv --page raw --print-units base \
    --launch-count "$2" build-gpu/bench/bench_gpu --only "$1" --out "$logs/bench-$1-under-ncu.json" > "$logs/ncu-$1.csv" 2>&1
  say "ncu exit $?"
  python3 bench/kernel_times.py "$logs/ncu-$1.csv" --top 12 2>&1 | tee -a "$summary"
done
fi

say "done at $(date +%T), $SECONDS s in all"
pack
