// A long run keeps memory flat: windows, state and the scheduler release what they no
// longer need. Measured as resident set growth between an early and a late batch.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "sluice/sluice.hpp"

using namespace sluice;
using namespace std::chrono_literals;

namespace {

size_t resident_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6));
  return 0;
}

}  // namespace

TEST(Memory, LongWindowedRunStaysFlat) {
  auto clock = std::make_shared<ManualClock>();
  StreamingContext ctx(ContextOptions{.batch_interval = 100ms, .clock = clock});
  GeneratorOptions g;
  g.kind = GeneratorOptions::Kind::Pairs;
  g.rate = 50'000;  // 5k records per 100 ms batch
  g.distinct_keys = 5000;
  TableStream pairs = ctx.generator(g);
  size_t windows_seen = 0;
  aggregate_by_key_and_window(pairs, KeyedAggregation{{"key"}, {AggregateSpec{AggregateKind::Sum, "value", "total"}}},
                              2000ms, 500ms)
      .foreach_batch([&](Time, const Table& t) { windows_seen += t.num_rows() > 0; });
  aggregate_state_by_key(pairs, KeyedAggregation{{"key"}, {AggregateSpec{AggregateKind::Count, "", "n"}}}, 10)
      .foreach_batch([](Time, const Table&) {});
  PairDStream<int64_t, int64_t> typed(pairs);
  typed.reduce_by_key_and_window(std::plus<int64_t>{}, std::minus<int64_t>{}, 3000ms, 100ms)
      .union_with(typed.window(1000ms, 100ms).reduce_by_key(std::plus<int64_t>{}))
      .foreach_batch([](Time, const Table&) {});

  ctx.start();
  ctx.advance_batches(300);  // windows and state are full, allocator pools warmed up
  const size_t early = resident_kib();
  for (int i = 0; i < 20; ++i) ctx.advance_batches(100);
  const size_t late = resident_kib();
  ctx.stop();
  EXPECT_GT(windows_seen, 400u);
  EXPECT_EQ(ctx.summary().records_in, 2300u * 5'000u);
  // 2000 more batches (10M records) may not grow the process by more than 32 MiB.
  EXPECT_LT(late, early + 32 * 1024) << "resident set grew from " << early << " KiB to " << late << " KiB";
}
