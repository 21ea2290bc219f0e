// CPU backend benchmarks: reduce_by_key (built-in sum by int64 key) at 1k, 100k and 10M
// distinct keys, and the cost of one window slide as the window grows from 2 to 64 slides.
// The bound, measured in the same run: memory read bandwidth (BM_MemoryReadBandwidth).
#include <benchmark/benchmark.h>

#include <numeric>
#include <random>

#include "sluice/sluice.hpp"

using namespace sluice;
using namespace std::chrono_literals;

namespace {

Table pairs_table(size_t rows, int64_t keys, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Column k(TypeId::Int64), v(TypeId::Int64);
  k.reserve(rows);
  v.reserve(rows);
  for (size_t i = 0; i < rows; ++i) {
    k.append<int64_t>(static_cast<int64_t>(rng() % static_cast<uint64_t>(keys)));
    v.append<int64_t>(static_cast<int64_t>(rng() % 100));
  }
  std::vector<Column> cols;
  cols.push_back(std::move(k));
  cols.push_back(std::move(v));
  return Table(Schema{{"key", TypeId::Int64}, {"value", TypeId::Int64}}, std::move(cols));
}

const KeyedAggregation kSumByKey{{"key"}, {AggregateSpec{AggregateKind::Sum, "value", "total"}}};

// The bound: sequential read of 1 GiB of int64.
void BM_MemoryReadBandwidth(benchmark::State& state) {
  std::vector<int64_t> data(size_t{1} << 27, 1);
  for (auto _ : state) benchmark::DoNotOptimize(std::accumulate(data.begin(), data.end(), int64_t{0}));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(data.size() * sizeof(int64_t)));
}
BENCHMARK(BM_MemoryReadBandwidth)->Unit(benchmark::kMillisecond)->MinTime(0.5);

// reduce_by_key over one batch of 10M (int64 key, int64 value) pairs.
void BM_ReduceByKey(benchmark::State& state) {
  const size_t rows = 10'000'000;
  const Table batch = pairs_table(rows, state.range(0), 1);
  auto backend = make_cpu_backend();
  for (auto _ : state) benchmark::DoNotOptimize(backend->finalize(backend->aggregate_partials(batch, kSumByKey), kSumByKey));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * rows));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * rows * 16));
}
BENCHMARK(BM_ReduceByKey)->Arg(1'000)->Arg(100'000)->Arg(10'000'000)->Unit(benchmark::kMillisecond)->MinTime(1.0);

// One slide of a sum window (invertible: add entering pane, subtract leaving pane) over
// 1M-record batches with 100k keys, for windows of 2..64 slides; timed in steady state.
void BM_WindowSlide(benchmark::State& state) {
  const int64_t slides = state.range(0);
  const bool invertible = state.range(1) != 0;
  auto clock = std::make_shared<ManualClock>();
  StreamingContext ctx(ContextOptions{.batch_interval = 1000ms, .clock = clock});
  std::vector<Table> batches;
  for (int i = 0; i < 4; ++i) batches.push_back(pairs_table(1'000'000, 100'000, static_cast<uint64_t>(i)));
  size_t next = 0;
  class Cycle final : public Source {
   public:
    Cycle(std::vector<Table>& b, size_t& n) : b_(b), n_(n) {}
    std::string name() const override { return "cycle"; }
    const Schema& schema() const override { return b_[0].schema(); }
    Table next_batch(Time) override { return b_[n_++ % b_.size()]; }
   private:
    std::vector<Table>& b_;
    size_t& n_;
  };
  TableStream in = ctx.add_source(std::make_unique<Cycle>(batches, next));
  KeyedAggregation plan = invertible ? kSumByKey
                                     : KeyedAggregation{{"key"}, {AggregateSpec{AggregateKind::Max, "value", "top"}}};
  aggregate_by_key_and_window(in, plan, 1000ms * slides, 1000ms).foreach_batch([](Time, const Table& t) {
    benchmark::DoNotOptimize(t.num_rows());
  });
  ctx.start();
  ctx.advance_batches(static_cast<size_t>(slides));  // the window is full
  for (auto _ : state) ctx.advance_batches(1);
  ctx.stop();
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * 1'000'000);
}
BENCHMARK(BM_WindowSlide)
    ->ArgsProduct({{2, 4, 8, 16, 32, 64}, {1}})
    ->ArgsProduct({{2, 8, 32}, {0}})
    ->ArgNames({"slides", "invertible"})
    ->UseRealTime()  // the work runs on the context's threads, not the benchmark's
    ->Unit(benchmark::kMillisecond)
    ->Iterations(5);

}  // namespace

BENCHMARK_MAIN();
