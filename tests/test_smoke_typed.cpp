#include <gtest/gtest.h>

#include "sluice/sluice.hpp"

using namespace sluice;
using namespace std::chrono_literals;

TEST(TypedApi, WordCountOverQueueStream) {
  auto clock = std::make_shared<ManualClock>();
  StreamingContext ctx(ContextOptions{.batch_interval = 1000ms, .clock = clock});
  auto lines = ctx.queue_stream<std::string>({{"a b a", "c"}, {"b"}, {}});
  std::vector<std::vector<std::pair<std::string, int64_t>>> out;
  lines.flat_map([](const std::string& l) { return split_words(l); })
      .map([](const std::string& w) { return std::pair<std::string, int64_t>(w, 1); })
      .reduce_by_key_and_window(std::plus<int64_t>{}, std::minus<int64_t>{}, 2000ms, 1000ms)
      .foreach_batch([&](Time, const std::vector<std::pair<std::string, int64_t>>& b) { out.push_back(b); });
  ctx.start();
  ctx.advance_batches(3);
  ctx.stop();
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0], (std::vector<std::pair<std::string, int64_t>>{{"a", 2}, {"b", 1}, {"c", 1}}));
  EXPECT_EQ(out[1], (std::vector<std::pair<std::string, int64_t>>{{"a", 2}, {"b", 2}, {"c", 1}}));
  EXPECT_EQ(out[2], (std::vector<std::pair<std::string, int64_t>>{{"a", 0}, {"b", 1}, {"c", 0}}));
}
