// Semantics of the typed DStream operations, written from Spark Streaming's documented
// behaviour: every test feeds several batches through a queue stream on a ManualClock
// (first batch at 1000 ms, one batch per 1000 ms) and checks the exact output of every
// batch time, including which batch times have output at all. Records within a batch have
// no specified order, so batches are sorted (values of groups too) before comparing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "sluice/sluice.hpp"

using namespace sluice;
using namespace std::chrono_literals;

namespace {

// ---------------------------------------------------------------- helpers

/// Output of a stream: batch time in ms -> the records of that batch.
template <class T> using Batches = std::map<int64_t, std::vector<T>>;

template <class T> class Recorder {
 public:
  void record(Time t, std::vector<T> batch) {
    std::lock_guard lock(mutex_);
    EXPECT_EQ(out_.count(t.ms), 0u) << "two outputs at batch time " << t.ms;
    out_[t.ms] = std::move(batch);
  }
  Batches<T> raw() const {
    std::lock_guard lock(mutex_);
    return out_;
  }
  /// Every batch sorted (records within a batch have no specified order).
  Batches<T> sorted() const {
    Batches<T> b = raw();
    for (auto& [t, v] : b) std::sort(v.begin(), v.end());
    return b;
  }

 private:
  mutable std::mutex mutex_;
  Batches<T> out_;
};

/// Registers a foreach_batch output that records every batch of @p stream.
template <class T> std::shared_ptr<Recorder<T>> collect(const DStream<T>& stream) {
  auto r = std::make_shared<Recorder<T>>();
  stream.foreach_batch([r](Time t, const std::vector<T>& batch) { r->record(t, batch); });
  return r;
}

/// Options of a context on @p clock with a 1000 ms batch interval.
ContextOptions manual(std::shared_ptr<ManualClock> clock) {
  ContextOptions o;
  o.batch_interval = 1000ms;
  o.clock = std::move(clock);
  return o;
}

/// A context on a ManualClock at 0 with a 1000 ms batch interval.
struct Env {
  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>();
  StreamingContext ctx{manual(clock)};
  /// Starts, runs @p n batches (1000 ms .. n * 1000 ms) and stops.
  void run(size_t n) {
    ctx.start();
    ctx.advance_batches(n);
    ctx.stop();
  }
};

template <class K, class V> using KV = std::pair<K, V>;

/// queue_stream<std::pair<K, V>> returns a DStream<std::pair<K, V>>; the by-key operations
/// need the PairDStream view of the same stream.
template <class K, class V> PairDStream<K, V> as_pairs(const DStream<std::pair<K, V>>& s) {
  return PairDStream<K, V>(s.table_stream());
}

/// Sorts the vectors nested in group_by_key / cogroup results, then the batches.
template <class K, class V> Batches<KV<K, std::vector<V>>> sort_groups(Batches<KV<K, std::vector<V>>> b) {
  for (auto& [t, batch] : b) {
    for (auto& [k, vs] : batch) std::sort(vs.begin(), vs.end());
    std::sort(batch.begin(), batch.end());
  }
  return b;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> sorted_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) lines.push_back(line);
  std::sort(lines.begin(), lines.end());
  return lines;
}

/// A fresh, empty directory under the system temp directory, removed at destruction.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& name) {
    path = std::filesystem::temp_directory_path() /
           ("sluice-" + name + "-" + std::to_string(reinterpret_cast<uintptr_t>(this)) + "-" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// ---------------------------------------------------------------- stateless, per record

TEST(DStreamOps, MapAppliesToEveryRecordOfEveryBatch) {
  Env env;
  auto in = env.ctx.queue_stream<int32_t>({{1, 2, 3}, {}, {4}});
  auto out = collect(in.map([](int32_t x) { return x * 10; }));
  // map to a different element type
  auto strs = collect(in.map([](int32_t x) { return std::to_string(x) + "!"; }));
  env.run(4);
  // After the queue runs out, the source delivers empty batches: every batch time has output.
  EXPECT_EQ(out->sorted(), (Batches<int32_t>{{1000, {10, 20, 30}}, {2000, {}}, {3000, {40}}, {4000, {}}}));
  EXPECT_EQ(strs->sorted(),
            (Batches<std::string>{{1000, {"1!", "2!", "3!"}}, {2000, {}}, {3000, {"4!"}}, {4000, {}}}));
}

TEST(DStreamOps, QueueStreamNotOneAtATimeDeliversEverythingInTheFirstBatch) {
  Env env;
  auto out = collect(env.ctx.queue_stream<int32_t>({{1, 2}, {3}, {}}, /*one_at_a_time=*/false));
  env.run(3);
  EXPECT_EQ(out->sorted(), (Batches<int32_t>{{1000, {1, 2, 3}}, {2000, {}}, {3000, {}}}));
}

TEST(DStreamOps, FlatMapFlattensTheReturnedContainers) {
  Env env;
  auto lines = env.ctx.queue_stream<std::string>({{"a b", "", "c  d\te"}, {"   "}, {"x"}});
  auto words = collect(lines.flat_map([](const std::string& l) { return split_words(l); }));
  // flat_map producing pairs gives a PairDStream
  auto pairs = collect(lines.flat_map([](const std::string& l) {
    std::vector<std::pair<std::string, int64_t>> out;
    for (auto& w : split_words(l)) out.emplace_back(w, static_cast<int64_t>(w.size()));
    return out;
  }));
  env.run(3);
  EXPECT_EQ(words->sorted(), (Batches<std::string>{{1000, {"a", "b", "c", "d", "e"}}, {2000, {}}, {3000, {"x"}}}));
  EXPECT_EQ(pairs->sorted(), (Batches<KV<std::string, int64_t>>{
                                 {1000, {{"a", 1}, {"b", 1}, {"c", 1}, {"d", 1}, {"e", 1}}}, {2000, {}}, {3000, {{"x", 1}}}}));
}

TEST(DStreamOps, FilterKeepsMatchingRecords) {
  Env env;
  auto in = env.ctx.queue_stream<int64_t>({{1, 2, 3, 4}, {1, 3}, {}, {6}});
  auto evens = collect(in.filter([](int64_t x) { return x % 2 == 0; }));
  auto pairs = env.ctx.queue_stream<KV<std::string, int32_t>>({{{"a", 1}, {"b", -1}}, {{"c", -2}}});
  auto positive = collect(pairs.filter([](const KV<std::string, int32_t>& p) { return p.second > 0; }));
  env.run(4);
  EXPECT_EQ(evens->sorted(), (Batches<int64_t>{{1000, {2, 4}}, {2000, {}}, {3000, {}}, {4000, {6}}}));
  EXPECT_EQ(positive->sorted(), (Batches<KV<std::string, int32_t>>{{1000, {{"a", 1}}}, {2000, {}}, {3000, {}}, {4000, {}}}));
}

TEST(DStreamOps, UnionWithHasTheRecordsOfBothStreams) {
  Env env;
  auto a = env.ctx.queue_stream<int32_t>({{1, 2}, {}, {3}});
  auto b = env.ctx.queue_stream<int32_t>({{2, 5}, {6}, {}});
  auto out = collect(a.union_with(b));
  auto self = collect(a.union_with(a));  // duplicates are kept
  env.run(4);
  EXPECT_EQ(out->sorted(), (Batches<int32_t>{{1000, {1, 2, 2, 5}}, {2000, {6}}, {3000, {3}}, {4000, {}}}));
  EXPECT_EQ(self->sorted(), (Batches<int32_t>{{1000, {1, 1, 2, 2}}, {2000, {}}, {3000, {3, 3}}, {4000, {}}}));
}

TEST(DStreamOps, UnionOfStreamsWithDifferentSlidesIsADefinitionError) {
  Env env;
  auto a = env.ctx.queue_stream<int32_t>({{1}});
  auto w = a.window(2000ms, 2000ms);
  EXPECT_THROW(a.union_with(w), sluice::Error);
}

// ---------------------------------------------------------------- whole-batch reductions

TEST(DStreamOps, CountIsOneRecordPerBatchAndZeroForAnEmptyBatch) {
  Env env;
  auto out = collect(env.ctx.queue_stream<std::string>({{"a", "b", "c"}, {}, {"d"}}).count());
  env.run(4);
  EXPECT_EQ(out->raw(), (Batches<int64_t>{{1000, {3}}, {2000, {0}}, {3000, {1}}, {4000, {0}}}));
}

TEST(DStreamOps, ReduceGivesNoRecordForAnEmptyBatch) {
  Env env;
  auto in = env.ctx.queue_stream<int64_t>({{1, 2, 3}, {}, {4}, {-5, 5}});
  auto sum = collect(in.reduce([](int64_t a, int64_t b) { return a + b; }));
  auto max = collect(in.reduce([](int64_t a, int64_t b) { return std::max(a, b); }));
  env.run(4);
  EXPECT_EQ(sum->raw(), (Batches<int64_t>{{1000, {6}}, {2000, {}}, {3000, {4}}, {4000, {0}}}));
  EXPECT_EQ(max->raw(), (Batches<int64_t>{{1000, {3}}, {2000, {}}, {3000, {4}}, {4000, {5}}}));
}

TEST(DStreamOps, CountByValueCountsEachDistinctRecord) {
  Env env;
  auto out = collect(env.ctx.queue_stream<std::string>({{"a", "b", "a"}, {}, {"c", "c", "c"}}).count_by_value());
  env.run(3);
  EXPECT_EQ(out->sorted(), (Batches<KV<std::string, int64_t>>{{1000, {{"a", 2}, {"b", 1}}}, {2000, {}}, {3000, {{"c", 3}}}}));
}

TEST(DStreamOps, TransformAppliesAFunctionOfTheWholeBatch) {
  Env env;
  auto in = env.ctx.queue_stream<int32_t>({{5, 1, 4}, {}, {7}});
  // f(const std::vector<T>&): the batch's two largest values
  auto top2 = collect(in.transform([](const std::vector<int32_t>& b) {
    std::vector<int32_t> v = b;
    std::sort(v.rbegin(), v.rend());
    if (v.size() > 2) v.resize(2);
    return v;
  }));
  // f(const std::vector<T>&, Time): Time is the batch time; returning pairs gives a PairDStream
  auto stamped = collect(in.transform([](const std::vector<int32_t>& b, Time t) {
    return std::vector<KV<int64_t, int64_t>>{{t.ms, static_cast<int64_t>(b.size())}};
  }));
  env.run(3);
  EXPECT_EQ(top2->sorted(), (Batches<int32_t>{{1000, {4, 5}}, {2000, {}}, {3000, {7}}}));
  EXPECT_EQ(stamped->raw(),
            (Batches<KV<int64_t, int64_t>>{{1000, {{1000, 3}}}, {2000, {{2000, 0}}}, {3000, {{3000, 1}}}}));
}

TEST(DStreamOps, FirstBatchTimeIsTheStartTimeRoundedUpToTheInterval) {
  auto clock = std::make_shared<ManualClock>(Time{1500});
  StreamingContext ctx(manual(clock));
  auto times = collect(ctx.queue_stream<int32_t>({{1}, {2}}).transform(
      [](const std::vector<int32_t>& b, Time t) {
        std::vector<KV<int64_t, int32_t>> out;
        for (int32_t x : b) out.emplace_back(t.ms, x);
        return out;
      }));
  ctx.start();
  ctx.advance_batches(2);
  ctx.stop();
  EXPECT_EQ(times->raw(), (Batches<KV<int64_t, int32_t>>{{2000, {{2000, 1}}}, {3000, {{3000, 2}}}}));
}

// ---------------------------------------------------------------- per-key, within a batch

TEST(DStreamOps, MapValuesAndFlatMapValuesKeepTheKey) {
  Env env;
  auto in = as_pairs(env.ctx.queue_stream<KV<std::string, int32_t>>({{{"a", 1}, {"b", 2}, {"a", 3}}, {}, {{"c", 0}}}));
  auto doubled = collect(in.map_values([](int32_t v) { return static_cast<double>(v) * 1.5; }));
  auto repeated = collect(in.flat_map_values([](int32_t v) { return std::vector<int32_t>(static_cast<size_t>(v), v); }));
  env.run(3);
  EXPECT_EQ(doubled->sorted(),
            (Batches<KV<std::string, double>>{{1000, {{"a", 1.5}, {"a", 4.5}, {"b", 3.0}}}, {2000, {}}, {3000, {{"c", 0.0}}}}));
  // a value mapped to no element leaves no record for that key
  EXPECT_EQ(repeated->sorted(),
            (Batches<KV<std::string, int32_t>>{
                {1000, {{"a", 1}, {"a", 3}, {"a", 3}, {"a", 3}, {"b", 2}, {"b", 2}}}, {2000, {}}, {3000, {}}}));
}

TEST(DStreamOps, ReduceByKeyCombinesTheValuesOfEachKeyPerBatch) {
  Env env;
  auto in = as_pairs(env.ctx.queue_stream<KV<std::string, int64_t>>(
      {{{"a", 1}, {"b", 2}, {"a", 3}, {"c", 5}}, {}, {{"a", 10}}, {{"b", 1}, {"b", 1}, {"b", 1}}}));
  auto sums = collect(in.reduce_by_key(std::plus<int64_t>{}));
  auto mins = collect(in.reduce_by_key([](int64_t x, int64_t y) { return std::min(x, y); }));
  env.run(4);
  EXPECT_EQ(sums->sorted(), (Batches<KV<std::string, int64_t>>{
                                {1000, {{"a", 4}, {"b", 2}, {"c", 5}}}, {2000, {}}, {3000, {{"a", 10}}}, {4000, {{"b", 3}}}}));
  EXPECT_EQ(mins->sorted(), (Batches<KV<std::string, int64_t>>{
                                {1000, {{"a", 1}, {"b", 2}, {"c", 5}}}, {2000, {}}, {3000, {{"a", 10}}}, {4000, {{"b", 1}}}}));
}

TEST(DStreamOps, GroupByKeyListsTheValuesOfEachKey) {
  Env env;
  auto in = as_pairs(env.ctx.queue_stream<KV<int32_t, std::string>>({{{1, "x"}, {2, "y"}, {1, "z"}, {1, "x"}}, {}, {{3, "w"}}}));
  auto out = collect(in.group_by_key());
  env.run(3);
  using G = KV<int32_t, std::vector<std::string>>;
  EXPECT_EQ(sort_groups(out->raw()),
            (Batches<G>{{1000, {{1, {"x", "x", "z"}}, {2, {"y"}}}}, {2000, {}}, {3000, {{3, {"w"}}}}}));
}

TEST(DStreamOps, CombineByKeyComputesAMeanThroughSumAndCount) {
  Env env;
  auto in = as_pairs(env.ctx.queue_stream<KV<std::string, double>>(
      {{{"a", 1.0}, {"b", 4.0}, {"a", 2.0}, {"a", 6.0}}, {}, {{"b", 0.5}, {"b", 1.5}}}));
  using SC = std::pair<double, int64_t>;
  auto combined = in.combine_by_key([](double v) { return SC{v, 1}; },
                                    [](const SC& c, double v) { return SC{c.first + v, c.second + 1}; },
                                    [](const SC& x, const SC& y) { return SC{x.first + y.first, x.second + y.second}; });
  auto sums = collect(combined);
  auto means = collect(combined.map_values([](const SC& c) { return c.first / static_cast<double>(c.second); }));
  env.run(3);
  EXPECT_EQ(sums->sorted(), (Batches<KV<std::string, SC>>{
                                {1000, {{"a", {9.0, 3}}, {"b", {4.0, 1}}}}, {2000, {}}, {3000, {{"b", {2.0, 2}}}}}));
  EXPECT_EQ(means->sorted(),
            (Batches<KV<std::string, double>>{{1000, {{"a", 3.0}, {"b", 4.0}}}, {2000, {}}, {3000, {{"b", 1.0}}}}));
}

// ---------------------------------------------------------------- joins and cogroup

struct JoinInputs {
  Env env;
  PairDStream<int32_t, std::string> left = as_pairs(env.ctx.queue_stream<KV<int32_t, std::string>>(
      {{{1, "a"}, {2, "b"}, {2, "bb"}, {3, "c"}}, {}, {{5, "e"}}, {}, {{6, "f"}}}));
  PairDStream<int32_t, int64_t> right = as_pairs(env.ctx.queue_stream<KV<int32_t, int64_t>>(
      {{{2, 10}, {2, 20}, {3, 30}, {4, 40}}, {{7, 70}}, {}, {}, {{6, 60}, {6, 61}}}));
};

TEST(DStreamOps, JoinPairsEveryMatchingValueOfTheSameBatch) {
  JoinInputs in;
  auto out = collect(in.left.join(in.right));
  in.env.run(5);
  using R = KV<int32_t, std::pair<std::string, int64_t>>;
  EXPECT_EQ(out->sorted(), (Batches<R>{{1000,
                                        {{2, {"b", 10}},
                                         {2, {"b", 20}},
                                         {2, {"bb", 10}},
                                         {2, {"bb", 20}},
                                         {3, {"c", 30}}}},
                                       {2000, {}},
                                       {3000, {}},
                                       {4000, {}},
                                       {5000, {{6, {"f", 60}}, {6, {"f", 61}}}}}));
}

TEST(DStreamOps, LeftOuterJoinKeepsUnmatchedLeftValues) {
  JoinInputs in;
  auto out = collect(in.left.left_outer_join(in.right));
  in.env.run(5);
  using R = KV<int32_t, std::pair<std::string, std::optional<int64_t>>>;
  EXPECT_EQ(out->sorted(), (Batches<R>{{1000,
                                        {{1, {"a", std::nullopt}},
                                         {2, {"b", 10}},
                                         {2, {"b", 20}},
                                         {2, {"bb", 10}},
                                         {2, {"bb", 20}},
                                         {3, {"c", 30}}}},
                                       {2000, {}},
                                       {3000, {{5, {"e", std::nullopt}}}},
                                       {4000, {}},
                                       {5000, {{6, {"f", 60}}, {6, {"f", 61}}}}}));
}

TEST(DStreamOps, RightOuterJoinKeepsUnmatchedRightValues) {
  JoinInputs in;
  auto out = collect(in.left.right_outer_join(in.right));
  in.env.run(5);
  using R = KV<int32_t, std::pair<std::optional<std::string>, int64_t>>;
  EXPECT_EQ(out->sorted(), (Batches<R>{{1000,
                                        {{2, {"b", 10}},
                                         {2, {"b", 20}},
                                         {2, {"bb", 10}},
                                         {2, {"bb", 20}},
                                         {3, {"c", 30}},
                                         {4, {std::nullopt, 40}}}},
                                       {2000, {{7, {std::nullopt, 70}}}},
                                       {3000, {}},
                                       {4000, {}},
                                       {5000, {{6, {"f", 60}}, {6, {"f", 61}}}}}));
}

TEST(DStreamOps, FullOuterJoinKeepsUnmatchedValuesOfBothSides) {
  JoinInputs in;
  auto out = collect(in.left.full_outer_join(in.right));
  in.env.run(5);
  using R = KV<int32_t, std::pair<std::optional<std::string>, std::optional<int64_t>>>;
  EXPECT_EQ(out->sorted(), (Batches<R>{{1000,
                                        {{1, {"a", std::nullopt}},
                                         {2, {"b", 10}},
                                         {2, {"b", 20}},
                                         {2, {"bb", 10}},
                                         {2, {"bb", 20}},
                                         {3, {"c", 30}},
                                         {4, {std::nullopt, 40}}}},
                                       {2000, {{7, {std::nullopt, 70}}}},
                                       {3000, {{5, {"e", std::nullopt}}}},
                                       {4000, {}},
                                       {5000, {{6, {"f", 60}}, {6, {"f", 61}}}}}));
}

TEST(DStreamOps, CogroupHasOneRecordPerKeyOfEitherStream) {
  JoinInputs in;
  auto out = collect(in.left.cogroup(in.right));
  in.env.run(5);
  using C = std::pair<std::vector<std::string>, std::vector<int64_t>>;
  using R = KV<int32_t, C>;
  Batches<R> got = out->raw();
  for (auto& [t, batch] : got) {
    for (auto& [k, c] : batch) {
      std::sort(c.first.begin(), c.first.end());
      std::sort(c.second.begin(), c.second.end());
    }
    std::sort(batch.begin(), batch.end());
  }
  EXPECT_EQ(got, (Batches<R>{{1000,
                              {{1, {{"a"}, {}}},
                               {2, {{"b", "bb"}, {10, 20}}},
                               {3, {{"c"}, {30}}},
                               {4, {{}, {40}}}}},
                             {2000, {{7, {{}, {70}}}}},
                             {3000, {{5, {{"e"}, {}}}}},
                             {4000, {}},
                             {5000, {{6, {{"f"}, {60, 61}}}}}}));
}

TEST(DStreamOps, JoinOfAWindowWithAStreamOfAnotherSlideIsADefinitionError) {
  JoinInputs in;
  auto windowed = in.right.window(2000ms, 2000ms);
  EXPECT_THROW(in.left.join(windowed), sluice::Error);
}

// ---------------------------------------------------------------- update_state_by_key

TEST(DStreamOps, UpdateStateByKeyCarriesStateAcrossBatches) {
  Env env;
  // A value of -1 asks for the key to be removed.
  auto in = as_pairs(env.ctx.queue_stream<KV<std::string, int64_t>>(
      {{{"a", 1}, {"b", 2}, {"a", 3}}, {{"b", 5}}, {}, {{"a", -1}, {"c", 7}}, {{"a", 2}}}));
  auto calls = std::make_shared<std::vector<std::pair<size_t, std::optional<int64_t>>>>();
  auto mu = std::make_shared<std::mutex>();
  auto totals = collect(in.update_state_by_key(
      [calls, mu](const std::vector<int64_t>& values, const std::optional<int64_t>& state) -> std::optional<int64_t> {
        {
          std::lock_guard lock(*mu);
          calls->emplace_back(values.size(), state);
        }
        int64_t total = state.value_or(0);
        for (int64_t v : values) {
          if (v == -1) return std::nullopt;
          total += v;
        }
        return total;
      }));
  env.run(6);
  // The output is the whole state after every batch, including keys without new values.
  EXPECT_EQ(totals->sorted(), (Batches<KV<std::string, int64_t>>{{1000, {{"a", 4}, {"b", 2}}},
                                                                {2000, {{"a", 4}, {"b", 7}}},
                                                                {3000, {{"a", 4}, {"b", 7}}},
                                                                {4000, {{"b", 7}, {"c", 7}}},
                                                                {5000, {{"a", 2}, {"b", 7}, {"c", 7}}},
                                                                {6000, {{"a", 2}, {"b", 7}, {"c", 7}}}}));
  // Keys with state but no new values are still updated, with an empty vector.
  std::lock_guard lock(*mu);
  size_t empty_calls_with_state = 0;
  for (const auto& [n, state] : *calls)
    if (n == 0) {
      EXPECT_TRUE(state.has_value()) << "called with neither values nor state";
      ++empty_calls_with_state;
    }
  // batch 2000: a; 3000: a, b; 4000: b; 5000: b, c; 6000: a, b, c
  EXPECT_EQ(empty_calls_with_state, 9u);
  EXPECT_EQ(calls->size(), 2u + 2u + 2u + 3u + 3u + 3u);
}

TEST(DStreamOps, UpdateStateByKeyWithAnExplicitStateType) {
  Env env;
  auto in = as_pairs(env.ctx.queue_stream<KV<std::string, int32_t>>(
      {{{"a", 1}, {"b", 2}, {"a", 3}}, {{"b", 5}}, {}, {{"a", 1}}, {{"c", 7}}}));
  // State: (running total, batches since the last value); a key idle for 2 batches is dropped.
  using S = std::pair<int64_t, int32_t>;
  auto state = collect(in.update_state_by_key<S>(
      [](const std::vector<int32_t>& values, const std::optional<S>& prev) -> std::optional<S> {
        if (values.empty()) {
          if (!prev) return std::nullopt;
          if (prev->second + 1 >= 2) return std::nullopt;
          return S{prev->first, prev->second + 1};
        }
        int64_t total = prev ? prev->first : 0;
        for (int32_t v : values) total += v;
        return S{total, 0};
      }));
  env.run(7);
  using R = KV<std::string, S>;
  EXPECT_EQ(state->sorted(), (Batches<R>{{1000, {{"a", {4, 0}}, {"b", {2, 0}}}},
                                         {2000, {{"a", {4, 1}}, {"b", {7, 0}}}},
                                         {3000, {{"b", {7, 1}}}},
                                         {4000, {{"a", {1, 0}}}},
                                         {5000, {{"a", {1, 1}}, {"c", {7, 0}}}},
                                         {6000, {{"c", {7, 1}}}},
                                         {7000, {}}}));
}

TEST(DStreamOps, UpdateStateByKeyReturningNoneForANewKeyCreatesNoState) {
  Env env;
  auto in = as_pairs(env.ctx.queue_stream<KV<int32_t, int32_t>>({{{1, 5}, {2, -5}}, {{2, 1}}, {}}));
  auto out = collect(in.update_state_by_key<std::string>(
      [](const std::vector<int32_t>& values, const std::optional<std::string>& prev) -> std::optional<std::string> {
        std::string s = prev.value_or("");
        for (int32_t v : values) {
          if (v < 0) return std::nullopt;
          s += std::to_string(v);
        }
        return s;
      }));
  env.run(3);
  EXPECT_EQ(out->sorted(), (Batches<KV<int32_t, std::string>>{
                               {1000, {{1, "5"}}}, {2000, {{1, "5"}, {2, "1"}}}, {3000, {{1, "5"}, {2, "1"}}}}));
}

TEST(DStreamOps, UpdateStateByKeyDeducesAStateTypeOtherThanTheValueType) {
  Env env;
  auto in = as_pairs(env.ctx.queue_stream<KV<std::string, int32_t>>({{{"a", 2000000000}, {"a", 2000000000}}, {{"b", 1}}}));
  // values int32, state int64 (deduced from the function's optional<int64_t> result)
  PairDStream<std::string, int64_t> sums = in.update_state_by_key(
      [](const std::vector<int32_t>& values, const std::optional<int64_t>& state) -> std::optional<int64_t> {
        int64_t total = state.value_or(0);
        for (int32_t v : values) total += v;
        return total;
      });
  auto out = collect(sums);
  env.run(3);
  EXPECT_EQ(out->sorted(), (Batches<KV<std::string, int64_t>>{{1000, {{"a", 4000000000}}},
                                                              {2000, {{"a", 4000000000}, {"b", 1}}},
                                                              {3000, {{"a", 4000000000}, {"b", 1}}}}));
}

// ---------------------------------------------------------------- element types

TEST(DStreamOps, ScalarElementTypesRoundTrip) {
  Env env;
  auto i32 = collect(env.ctx.queue_stream<int32_t>({{-2147483647 - 1, 0, 2147483647}, {}}).map([](int32_t x) { return x; }));
  auto i64 = collect(env.ctx.queue_stream<int64_t>({{INT64_MIN, -1, INT64_MAX}, {42}}).map([](int64_t x) { return x; }));
  auto dbl = collect(env.ctx.queue_stream<double>({{-0.5, 1e300, 3.25}, {}}).map([](double x) { return x * 2; }));
  auto bools = collect(env.ctx.queue_stream<bool>({{true, false, true}, {false}}).map([](bool b) { return !b; }));
  auto strs = collect(env.ctx.queue_stream<std::string>({{"", "héllo", std::string("a\0b", 3), "quote\"s"}, {"x"}})
                          .map([](const std::string& s) { return s + "|"; }));
  // int32 keys widen to int64 sums, bool keys group
  auto bool_keys = collect(env.ctx.queue_stream<bool>({{true, false, true}, {false}}).count_by_value());
  env.run(2);
  EXPECT_EQ(i32->sorted(), (Batches<int32_t>{{1000, {-2147483647 - 1, 0, 2147483647}}, {2000, {}}}));
  EXPECT_EQ(i64->sorted(), (Batches<int64_t>{{1000, {INT64_MIN, -1, INT64_MAX}}, {2000, {42}}}));
  EXPECT_EQ(dbl->sorted(), (Batches<double>{{1000, {-1.0, 6.5, 2e300}}, {2000, {}}}));
  EXPECT_EQ(bools->sorted(), (Batches<bool>{{1000, {false, false, true}}, {2000, {true}}}));
  std::vector<std::string> expected_strs{"|", std::string("a\0b|", 4), "héllo|", "quote\"s|"};
  std::sort(expected_strs.begin(), expected_strs.end());
  EXPECT_EQ(strs->sorted(), (Batches<std::string>{{1000, expected_strs}, {2000, {"x|"}}}));
  EXPECT_EQ(bool_keys->sorted(), (Batches<KV<bool, int64_t>>{{1000, {{false, 1}, {true, 2}}}, {2000, {{false, 1}}}}));
}

TEST(DStreamOps, TupleElementsAndTupleKeys) {
  Env env;
  using T3 = std::tuple<std::string, int32_t, double>;
  auto in = env.ctx.queue_stream<T3>({{{"a", 1, 0.5}, {"b", 2, 1.5}, {"a", 1, 2.0}}, {{"a", 2, 1.0}}});
  auto mapped = collect(in.map([](const T3& t) { return std::make_tuple(std::get<1>(t), std::get<0>(t)); }));
  // key (string, int32), value double
  auto sums = collect(in.map([](const T3& t) {
                          return std::pair<std::tuple<std::string, int32_t>, double>({std::get<0>(t), std::get<1>(t)}, std::get<2>(t));
                        }).reduce_by_key(std::plus<double>{}));
  env.run(2);
  EXPECT_EQ(mapped->sorted(), (Batches<std::tuple<int32_t, std::string>>{
                                  {1000, {{1, "a"}, {1, "a"}, {2, "b"}}}, {2000, {{2, "a"}}}}));
  using R = KV<std::tuple<std::string, int32_t>, double>;
  EXPECT_EQ(sums->sorted(), (Batches<R>{{1000, {{{"a", 1}, 2.5}, {{"b", 2}, 1.5}}}, {2000, {{{"a", 2}, 1.0}}}}));
}

TEST(DStreamOps, NestedPairElements) {
  Env env;
  using N = KV<std::string, std::pair<int32_t, std::pair<double, bool>>>;
  auto in = as_pairs(env.ctx.queue_stream<N>({{{"x", {1, {0.5, true}}}, {"y", {2, {1.5, false}}}, {"x", {3, {2.5, true}}}}, {}}));
  auto keyed = collect(in.reduce_by_key([](const std::pair<int32_t, std::pair<double, bool>>& a,
                                           const std::pair<int32_t, std::pair<double, bool>>& b) {
    return std::pair<int32_t, std::pair<double, bool>>{a.first + b.first,
                                                       {a.second.first + b.second.first, a.second.second && b.second.second}};
  }));
  // a nested pair as the key
  auto nested_key = collect(in.map([](const N& n) { return std::pair<std::pair<std::string, bool>, int32_t>({n.first, n.second.second.second}, n.second.first); })
                                .reduce_by_key(std::plus<int32_t>{}));
  env.run(2);
  EXPECT_EQ(keyed->sorted(), (Batches<N>{{1000, {{"x", {4, {3.0, true}}}, {"y", {2, {1.5, false}}}}}, {2000, {}}}));
  using R = KV<std::pair<std::string, bool>, int32_t>;
  EXPECT_EQ(nested_key->sorted(), (Batches<R>{{1000, {{{"x", true}, 4}, {{"y", false}, 2}}}, {2000, {}}}));
}

TEST(DStreamOps, OptionalElementsAndOptionalKeys) {
  Env env;
  using O = std::optional<int32_t>;
  auto in = env.ctx.queue_stream<O>({{1, std::nullopt, 1, std::nullopt, 3}, {std::nullopt}, {}, {5}});
  auto counts = collect(in.count_by_value());
  auto doubled = collect(in.map([](const O& o) -> std::optional<int64_t> {
    if (!o) return std::nullopt;
    return int64_t{*o} * 2;
  }));
  auto present = collect(in.filter([](const O& o) { return o.has_value(); }).map([](const O& o) { return *o; }));
  auto opt_strings = collect(env.ctx.queue_stream<std::optional<std::string>>({{"a", std::nullopt}, {}, {}, {std::nullopt}}));
  env.run(4);
  EXPECT_EQ(counts->sorted(), (Batches<KV<O, int64_t>>{{1000, {{std::nullopt, 2}, {1, 2}, {3, 1}}},
                                                       {2000, {{std::nullopt, 1}}},
                                                       {3000, {}},
                                                       {4000, {{5, 1}}}}));
  EXPECT_EQ(doubled->sorted(), (Batches<std::optional<int64_t>>{{1000, {std::nullopt, std::nullopt, 2, 2, 6}},
                                                                {2000, {std::nullopt}},
                                                                {3000, {}},
                                                                {4000, {10}}}));
  EXPECT_EQ(present->sorted(), (Batches<int32_t>{{1000, {1, 1, 3}}, {2000, {}}, {3000, {}}, {4000, {5}}}));
  EXPECT_EQ(opt_strings->sorted(), (Batches<std::optional<std::string>>{
                                       {1000, {std::nullopt, "a"}}, {2000, {}}, {3000, {}}, {4000, {std::nullopt}}}));
}

// An optional pair is present when any component is: pair(none, 1) must not read back as none.
TEST(DStreamOps, OptionalOfAPairWhoseFirstComponentIsOptional) {
  // present(pair(none, 1)) must not read back as none
  Env env;
  using P = std::optional<std::pair<std::optional<int32_t>, int32_t>>;
  auto out = collect(env.ctx.queue_stream<P>({{P{{std::nullopt, 1}}, std::nullopt, P{{2, 3}}}}).map([](const P& p) { return p; }));
  env.run(1);
  EXPECT_EQ(out->sorted(), (Batches<P>{{1000, {std::nullopt, P{{std::nullopt, 1}}, P{{2, 3}}}}}));
}

TEST(DStreamOps, VectorElementsAndVectorKeys) {
  Env env;
  using V = std::vector<int32_t>;
  auto in = env.ctx.queue_stream<V>({{{1, 2}, {}, {1, 2}, {3}}, {{}}});
  auto sizes = collect(in.map([](const V& v) { return static_cast<int64_t>(v.size()); }));
  auto counts = collect(in.count_by_value());
  auto flat = collect(in.flat_map([](const V& v) { return v; }));
  auto reversed = collect(in.map([](const V& v) { return V(v.rbegin(), v.rend()); }));
  // vectors of strings and vectors of pairs
  auto nested = collect(env.ctx.queue_stream<KV<std::string, std::vector<KV<std::string, double>>>>(
      {{{"k", {{"a", 1.0}, {"b", 2.0}}}, {"e", {}}}, {}}));
  env.run(2);
  EXPECT_EQ(sizes->sorted(), (Batches<int64_t>{{1000, {0, 1, 2, 2}}, {2000, {0}}}));
  EXPECT_EQ(counts->sorted(), (Batches<KV<V, int64_t>>{{1000, {{{}, 1}, {{1, 2}, 2}, {{3}, 1}}}, {2000, {{{}, 1}}}}));
  EXPECT_EQ(flat->sorted(), (Batches<int32_t>{{1000, {1, 1, 2, 2, 3}}, {2000, {}}}));
  EXPECT_EQ(reversed->sorted(), (Batches<V>{{1000, {{}, {2, 1}, {2, 1}, {3}}}, {2000, {{}}}}));
  using NV = KV<std::string, std::vector<KV<std::string, double>>>;
  EXPECT_EQ(nested->sorted(), (Batches<NV>{{1000, {{"e", {}}, {"k", {{"a", 1.0}, {"b", 2.0}}}}}, {2000, {}}}));
}

// ---------------------------------------------------------------- outputs

TEST(DStreamOps, SaveAsTextFilesWritesOneDirectoryPerBatch) {
  TempDir dir("save");
  Env env;
  auto ints = env.ctx.queue_stream<int32_t>({{3, 1, 2}, {}, {7}});
  ints.save_as_text_files((dir.path / "nums").string(), "txt");
  auto pairs = env.ctx.queue_stream<KV<std::string, int64_t>>({{{"a", 1}, {"b", 2}}, {{"c", 3}}, {}});
  pairs.save_as_text_files((dir.path / "pairs").string());  // no suffix: PREFIX-TIME
  env.run(3);

  namespace fs = std::filesystem;
  for (int64_t t : {1000, 2000, 3000}) {
    EXPECT_TRUE(fs::is_directory(dir.path / ("nums-" + std::to_string(t) + ".txt"))) << t;
    EXPECT_TRUE(fs::is_directory(dir.path / ("pairs-" + std::to_string(t)))) << t;
  }
  EXPECT_EQ(sorted_lines(read_file(dir.path / "nums-1000.txt" / "part-00000")), (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(read_file(dir.path / "nums-2000.txt" / "part-00000"), "");  // an empty batch: an empty part file
  EXPECT_EQ(read_file(dir.path / "nums-3000.txt" / "part-00000"), "7\n");
  EXPECT_EQ(sorted_lines(read_file(dir.path / "pairs-1000" / "part-00000")),
            (std::vector<std::string>{"[\"a\",1]", "[\"b\",2]"}));
  EXPECT_EQ(read_file(dir.path / "pairs-2000" / "part-00000"), "[\"c\",3]\n");
  EXPECT_EQ(read_file(dir.path / "pairs-3000" / "part-00000"), "");
  // Nothing else: no directory for a batch time that did not run, no temporary leftovers.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"nums-1000.txt", "nums-2000.txt", "nums-3000.txt", "pairs-1000",
                                             "pairs-2000", "pairs-3000"}));
}

TEST(DStreamOps, SaveAsTextFilesOfAWindowWritesOnlyAtSlideTimes) {
  TempDir dir("save-window");
  Env env;
  env.ctx.queue_stream<int32_t>({{1}, {2}, {3}, {4}}).window(2000ms, 2000ms).save_as_text_files((dir.path / "w").string(), "out");
  env.run(4);
  namespace fs = std::filesystem;
  EXPECT_FALSE(fs::exists(dir.path / "w-1000.out"));
  EXPECT_FALSE(fs::exists(dir.path / "w-3000.out"));
  EXPECT_EQ(sorted_lines(read_file(dir.path / "w-2000.out" / "part-00000")), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(sorted_lines(read_file(dir.path / "w-4000.out" / "part-00000")), (std::vector<std::string>{"3", "4"}));
}

std::string print_header(int64_t t) {
  return "-------------------------------------------\nTime: " + std::to_string(t) +
         " ms\n-------------------------------------------\n";
}

TEST(DStreamOps, PrintWritesTheFirstRecordsOfEveryBatch) {
  Env env;
  // Batches of equal records, so that "the first n" does not depend on record order.
  env.ctx.queue_stream<int32_t>({{7, 7, 7}, {}, {5}, {4, 4}}).print(2);
  testing::internal::CaptureStdout();
  env.run(4);
  const std::string out = testing::internal::GetCapturedStdout();
  EXPECT_EQ(out, print_header(1000) + "7\n7\n...\n\n" +  // more than n records: "..."
                     print_header(2000) + "\n" +        // an empty batch still prints its header
                     print_header(3000) + "5\n\n" +     //
                     print_header(4000) + "4\n4\n\n");  // exactly n records: no "..."
}

TEST(DStreamOps, PrintDefaultsToTenRecords) {
  Env env;
  env.ctx.queue_stream<int64_t>({std::vector<int64_t>(11, 9), std::vector<int64_t>(10, 8)}).print();
  testing::internal::CaptureStdout();
  env.run(2);
  const std::string out = testing::internal::GetCapturedStdout();
  std::string expected = print_header(1000);
  for (int i = 0; i < 10; ++i) expected += "9\n";
  expected += "...\n\n" + print_header(2000);
  for (int i = 0; i < 10; ++i) expected += "8\n";
  expected += "\n";
  EXPECT_EQ(out, expected);
}

TEST(DStreamOps, PrintOfAWindowPrintsOnlyAtSlideTimes) {
  Env env;
  env.ctx.queue_stream<int64_t>({{1}, {1}, {1}}).window(2000ms, 2000ms).count().print();
  testing::internal::CaptureStdout();
  env.run(4);
  const std::string out = testing::internal::GetCapturedStdout();
  EXPECT_EQ(out, print_header(2000) + "2\n\n" + print_header(4000) + "1\n\n");
}

}  // namespace
