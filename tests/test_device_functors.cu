// sluice::device_fn functors in a translation unit compiled by nvcc: map, filter and
// reduce_by_key run inside kernels on the CUDA backend and on the host otherwise. The same
// pipeline runs on both backends and must give the same batches; on a machine without a GPU
// the host run is checked against expected values and the GPU run is skipped, saying so.
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <vector>

#include "sluice/sluice.hpp"

using namespace sluice;
using namespace std::chrono_literals;

namespace {

struct Triple {
  SLUICE_FN int64_t operator()(int64_t x) const { return 3 * x + 1; }
};
struct IsEven {
  SLUICE_FN bool operator()(int64_t x) const { return x % 2 == 0; }
};
struct Halve {
  SLUICE_FN double operator()(int64_t x) const { return static_cast<double>(x) / 2; }
};
struct Add {
  SLUICE_FN int64_t operator()(int64_t a, int64_t b) const { return a + b; }
};
struct Larger {
  SLUICE_FN double operator()(double a, double b) const { return a > b ? a : b; }
};

template <class T> using Batches = std::map<int64_t, std::vector<T>>;

template <class T> std::shared_ptr<Batches<T>> collect(const DStream<T>& s, std::mutex& m) {
  auto out = std::make_shared<Batches<T>>();
  s.foreach_batch([out, &m](Time t, const std::vector<T>& b) {
    std::lock_guard lock(m);
    (*out)[t.ms] = b;
  });
  return out;
}

struct Results {
  Batches<int64_t> mapped_then_filtered;
  Batches<double> halves;
  Batches<bool> evens;
  Batches<std::pair<int64_t, int64_t>> sums;
  Batches<std::pair<int32_t, double>> maxima;
};

/// The same job on @p backend: 3 batches of integers and keyed pairs.
Results run_on(BackendKind backend) {
  ContextOptions o;
  o.batch_interval = 1000ms;
  auto clock = std::make_shared<ManualClock>();
  o.clock = clock;
  o.backend = backend;
  StreamingContext ctx(o);
  std::vector<std::vector<int64_t>> numbers;
  std::vector<std::vector<std::pair<int64_t, int64_t>>> pairs;
  std::vector<std::vector<std::pair<int32_t, double>>> readings;
  for (int64_t b = 0; b < 3; ++b) {
    std::vector<int64_t> n;
    std::vector<std::pair<int64_t, int64_t>> p;
    std::vector<std::pair<int32_t, double>> r;
    for (int64_t i = 0; i < 1000 * (b + 1); ++i) {
      n.push_back(i * 7 - 300 + b);
      p.emplace_back((i * 31 + b) % 17 - 5, i);
      r.emplace_back(static_cast<int32_t>(i % 5), static_cast<double>((i * 13) % 101) / 4);
    }
    numbers.push_back(n);
    pairs.push_back(p);
    readings.push_back(r);
  }
  numbers.push_back({});  // an empty batch
  std::mutex m;
  auto ints = ctx.queue_stream(numbers);
  auto filtered = collect(ints.map(device_fn(Triple{})).filter(device_fn(IsEven{})), m);
  auto halves = collect(ints.map(device_fn(Halve{})), m);
  auto evens = collect(ints.map(device_fn(IsEven{})), m);  // bool records
  auto summed = collect(DStream<std::pair<int64_t, int64_t>>(
                            PairDStream<int64_t, int64_t>(ctx.queue_stream(pairs).table_stream()).reduce_by_key(device_fn(Add{}))),
                        m);
  auto maxima = collect(DStream<std::pair<int32_t, double>>(
                            PairDStream<int32_t, double>(ctx.queue_stream(readings).table_stream()).reduce_by_key(device_fn(Larger{}))),
                        m);
  ctx.start();
  ctx.advance_batches(4);
  ctx.stop();
  return Results{*filtered, *halves, *evens, *summed, *maxima};
}

}  // namespace

TEST(DeviceFunctors, RunOnTheHostWithTheCpuBackend) {
  const Results r = run_on(BackendKind::Cpu);
  ASSERT_EQ(r.mapped_then_filtered.size(), 4u);
  for (const auto& [t, batch] : r.mapped_then_filtered)
    for (int64_t x : batch) EXPECT_EQ(x % 2, 0) << "batch " << t;
  // batch 1: x = 7i - 300, 3x + 1 = 21i - 899 is even when i is odd: 500 of 1000.
  EXPECT_EQ(r.mapped_then_filtered.at(1000).size(), 500u);
  EXPECT_EQ(r.mapped_then_filtered.at(1000).front(), 21 * 1 - 899);
  EXPECT_DOUBLE_EQ(r.halves.at(2000).front(), (0 * 7 - 300 + 1) / 2.0);
  EXPECT_TRUE(r.halves.at(4000).empty());
  ASSERT_EQ(r.evens.at(1000).size(), 1000u);
  EXPECT_TRUE(r.evens.at(1000)[0]);   // -300
  EXPECT_FALSE(r.evens.at(1000)[1]);  // -293
  // Keys in order of first appearance, values summed.
  std::map<int64_t, int64_t> want;
  for (int64_t i = 0; i < 1000; ++i) want[(i * 31) % 17 - 5] += i;
  ASSERT_EQ(r.sums.at(1000).size(), want.size());
  EXPECT_EQ(r.sums.at(1000).front().first, -5);
  for (const auto& [k, v] : r.sums.at(1000)) EXPECT_EQ(v, want.at(k)) << "key " << k;
  ASSERT_EQ(r.maxima.at(3000).size(), 5u);
  EXPECT_DOUBLE_EQ(r.maxima.at(3000).front().second, 25.0);
}

TEST(DeviceFunctors, RunInsideKernelsWithTheCudaBackendAndAgreeWithTheHost) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine: device functors need one";
  const Results host = run_on(BackendKind::Cpu);
  const Results gpu = run_on(BackendKind::Cuda);
  EXPECT_EQ(gpu.mapped_then_filtered, host.mapped_then_filtered);
  EXPECT_EQ(gpu.halves, host.halves);
  EXPECT_EQ(gpu.evens, host.evens);
  EXPECT_EQ(gpu.sums, host.sums);
  EXPECT_EQ(gpu.maxima, host.maxima);
}
