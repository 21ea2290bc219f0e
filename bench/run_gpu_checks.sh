#!/usr/bin/env bash
# Everything only a GPU machine can show, in one run: a build, the GPU tests (the CUDA
# backend against the CPU backend, and the engine and pipeline suites on backend cuda),
# compute-sanitizer memcheck and racecheck on the CUDA backend tests, bench_gpu, and
# sluice-bench's YSB and word count on sluice-gpu.
# Logs, the sanitizer reports and bench_gpu.json go to $OUT (default: gpu-checks/).
#
# Prepare on a machine with a package registry, then carry .deps to the GPU host:
#   EXTRA_DEBS="libyaml-cpp-dev libyaml-cpp0.7 nlohmann-json3-dev" ../shared/gpu-host/pack-deps.sh
#   bench/run_gpu_checks.sh            # on the GPU host, from the project root
set -u
out=${OUT:-gpu-checks}
mkdir -p "$out"
cd "$(dirname "$0")/.."
if [ -f .deps/env.sh ]; then
  # shellcheck disable=SC1091
  source .deps/env.sh
fi
prefix=()
[ -n "${SLUICE_DEPS_PREFIX:-}" ] && prefix=(-DCMAKE_PREFIX_PATH="$SLUICE_DEPS_PREFIX")
step() { echo "== $* ($(date +%T))"; }

step "device"
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 && head -15 "$out/nvidia-smi.txt"

step "build"
if ! { cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release "${prefix[@]}" &&
       cmake --build build-gpu -j"$(nproc)"; } > "$out/build.log" 2>&1; then
  tail -40 "$out/build.log"
  exit 1
fi

step "GPU tests"
(cd build-gpu && ctest -j4 --output-on-failure -R 'Cuda|cuda/|BackendChoice|OnHost' > "../$out/ctest-gpu.log" 2>&1)
echo "ctest (GPU tests) exit $?"
tail -5 "$out/ctest-gpu.log"

step "compute-sanitizer"
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
# Sizes that cover every path (hash, sort, verification, windows) without hour-long runs.
filter='*FewInts_4097*:*ManyInts_100003*:*Strings_100003*:*NullableStringAndInt_999_*:*Floats*:CudaWordCount.*:CudaSplit.*:CudaEngine.AColumnItMade*'
for tool in memcheck racecheck; do
  "$sanitizer" --tool "$tool" --error-exitcode 99 build-gpu/tests/test_cuda_backend --gtest_filter="$filter" \
    > "$out/sanitizer-$tool.log" 2>&1
  echo "compute-sanitizer $tool exit $?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitizer-$tool.log" | tail -1)"
done

step "bench_gpu"
build-gpu/bench/bench_gpu --out "$out/bench_gpu.json" 2>&1 | tee "$out/bench_gpu.txt"

step "sluice-bench: YSB and word count end to end, sluice-gpu against sluice-cpu"
python3 bench/sluice-bench --mode quick --workload ysb,wordcount --engines sluice-cpu,sluice-gpu \
  --runner build-gpu/bench/sluice-bench-runner --out "$out/sluice-bench" > "$out/sluice-bench.log" 2>&1
echo "sluice-bench exit $?"
tail -12 "$out/sluice-bench.log"

step "whole suite"
(cd build-gpu && ctest -j8 -E 'SluiceBench.Peers' > "../$out/ctest-all.log" 2>&1)
echo "ctest (all) exit $?"
tail -4 "$out/ctest-all.log"
