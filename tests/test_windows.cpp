// Window semantics, written from Spark Streaming's documented behaviour: a window of length
// W sliding every S emits only at the times zero + k * S, and holds the batches of the last W
// (fewer at the start). Batch interval 1000 ms on a ManualClock at 0: the first batch is at
// 1000 ms. Records within a batch have no specified order: batches are sorted before comparing.
// Also the untyped built-in aggregates of table_ops.hpp over windows and as running state,
// with a differential test against a brute-force recomputation of every window.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "sluice/sluice.hpp"

using namespace sluice;
using namespace std::chrono_literals;

namespace {

// ---------------------------------------------------------------- helpers

template <class T> using Batches = std::map<int64_t, std::vector<T>>;
template <class K, class V> using KV = std::pair<K, V>;

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
  Batches<T> sorted() const {
    Batches<T> b = raw();
    for (auto& [t, v] : b) std::sort(v.begin(), v.end());
    return b;
  }

 private:
  mutable std::mutex mutex_;
  Batches<T> out_;
};

template <class T> std::shared_ptr<Recorder<T>> collect(const DStream<T>& stream) {
  auto r = std::make_shared<Recorder<T>>();
  stream.foreach_batch([r](Time t, const std::vector<T>& batch) { r->record(t, batch); });
  return r;
}

/// Records an untyped stream decoded as T, and the field names of its batches.
template <class T> std::shared_ptr<Recorder<T>> collect_table(const TableStream& stream,
                                                              std::shared_ptr<std::vector<std::string>> names = nullptr) {
  auto r = std::make_shared<Recorder<T>>();
  stream.foreach_batch([r, names](Time t, const Table& table) {
    if (names) {
      names->clear();
      for (const auto& f : table.schema()) names->push_back(f.name);
    }
    r->record(t, decode<T>(table));
  });
  return r;
}

template <class K, class V> PairDStream<K, V> as_pairs(const DStream<std::pair<K, V>>& s) {
  return PairDStream<K, V>(s.table_stream());
}

/// Options of a context on @p clock with a 1000 ms batch interval.
ContextOptions manual(std::shared_ptr<ManualClock> clock) {
  ContextOptions o;
  o.batch_interval = 1000ms;
  o.clock = std::move(clock);
  return o;
}

struct Env {
  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>();
  StreamingContext ctx{manual(clock)};
  void run(size_t n) {
    ctx.start();
    ctx.advance_batches(n);
    ctx.stop();
  }
};

/// Expects that evaluating @p define throws sluice::Error whose message contains every one of @p parts.
template <class F> void expect_definition_error(F define, std::vector<std::string> parts) {
  try {
    define();
    ADD_FAILURE() << "no sluice::Error thrown";
  } catch (const sluice::Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

AggregateSpec agg(AggregateKind kind, std::string input, std::string output) {
  AggregateSpec a;
  a.kind = kind;
  a.input = std::move(input);
  a.output = std::move(output);
  return a;
}

KeyedAggregation plan(std::vector<std::string> keys, std::vector<AggregateSpec> aggregates) {
  KeyedAggregation p;
  p.keys = std::move(keys);
  p.aggregates = std::move(aggregates);
  return p;
}

// ---------------------------------------------------------------- window()

TEST(Windows, WindowLength3Slide1HasPartialWindowsAtTheStart) {
  Env env;
  auto in = env.ctx.queue_stream<int32_t>({{1}, {2, 20}, {3}, {4}, {}});
  auto out = collect(in.window(3000ms, 1000ms));
  env.run(7);
  EXPECT_EQ(out->sorted(), (Batches<int32_t>{{1000, {1}},
                                             {2000, {1, 2, 20}},
                                             {3000, {1, 2, 3, 20}},
                                             {4000, {2, 3, 4, 20}},
                                             {5000, {3, 4}},
                                             {6000, {4}},
                                             {7000, {}}}));
}

TEST(Windows, WindowLength4Slide2EmitsOnlyAtSlideTimes) {
  Env env;
  auto in = env.ctx.queue_stream<int32_t>({{1}, {2}, {3}, {4}, {5}, {6}});
  auto out = collect(in.window(4000ms, 2000ms));
  auto counted = collect(in.window(4000ms, 2000ms).count());  // operations after a window keep its slide
  env.run(9);
  EXPECT_EQ(out->sorted(), (Batches<int32_t>{{2000, {1, 2}}, {4000, {1, 2, 3, 4}}, {6000, {3, 4, 5, 6}}, {8000, {5, 6}}}));
  EXPECT_EQ(counted->raw(), (Batches<int64_t>{{2000, {2}}, {4000, {4}}, {6000, {4}}, {8000, {2}}}));
}

TEST(Windows, TumblingWindow) {
  Env env;
  auto out = collect(env.ctx.queue_stream<std::string>({{"a"}, {"b"}, {"c"}, {}, {"e"}}).window(2000ms, 2000ms));
  env.run(6);
  EXPECT_EQ(out->sorted(), (Batches<std::string>{{2000, {"a", "b"}}, {4000, {"c"}}, {6000, {"e"}}}));
}

TEST(Windows, WindowOfAWindow) {
  Env env;
  auto in = env.ctx.queue_stream<int32_t>({{1}, {2}, {3}, {4}, {5}, {6}, {7}, {8}});
  auto tumbling = in.window(2000ms, 2000ms);
  // The outer window holds the inner one's outputs at its slide times within (t - 8 s, t].
  auto outer = collect(tumbling.window(8000ms, 4000ms));
  // Sliding over sliding: every inner output in the window, duplicates included (Spark's semantics).
  auto sliding = collect(in.window(2000ms, 1000ms).window(2000ms, 1000ms));
  env.run(12);
  EXPECT_EQ(outer->sorted(), (Batches<int32_t>{{4000, {1, 2, 3, 4}}, {8000, {1, 2, 3, 4, 5, 6, 7, 8}}, {12000, {5, 6, 7, 8}}}));
  EXPECT_EQ(sliding->sorted(), (Batches<int32_t>{{1000, {1}},
                                                 {2000, {1, 1, 2}},
                                                 {3000, {1, 2, 2, 3}},
                                                 {4000, {2, 3, 3, 4}},
                                                 {5000, {3, 4, 4, 5}},
                                                 {6000, {4, 5, 5, 6}},
                                                 {7000, {5, 6, 6, 7}},
                                                 {8000, {6, 7, 7, 8}},
                                                 {9000, {7, 8, 8}},
                                                 {10000, {8}},
                                                 {11000, {}},
                                                 {12000, {}}}));
}

TEST(Windows, WindowOfNestedElementTypes) {
  Env env;
  using E = std::pair<std::optional<std::string>, std::vector<int32_t>>;
  // the first batch has no null, the second only nulls: the window mixes both layouts
  auto in = env.ctx.queue_stream<E>({{{"a", {1, 2}}}, {{std::nullopt, {}}, {std::nullopt, {3}}}, {}});
  auto out = collect(in.window(2000ms, 1000ms));
  env.run(4);
  EXPECT_EQ(out->sorted(), (Batches<E>{{1000, {{"a", {1, 2}}}},
                                       {2000, {{std::nullopt, {}}, {std::nullopt, {3}}, {"a", {1, 2}}}},
                                       {3000, {{std::nullopt, {}}, {std::nullopt, {3}}}},
                                       {4000, {}}}));
}

// ---------------------------------------------------------------- definition errors

TEST(Windows, DurationsThatAreNotMultiplesAreDefinitionErrorsNamingThem) {
  Env env;
  auto in = env.ctx.queue_stream<int32_t>({{1}});
  auto pairs = in.map([](int32_t x) { return std::pair<int32_t, int64_t>(x, 1); });
  auto plus = [](int64_t a, int64_t b) { return a + b; };
  auto minus = [](int64_t a, int64_t b) { return a - b; };
  auto iplus = [](int32_t a, int32_t b) { return a + b; };
  auto iminus = [](int32_t a, int32_t b) { return a - b; };

  // window not a multiple of the batch interval
  expect_definition_error([&] { in.window(2500ms, 1000ms); }, {"2500 ms", "1000 ms"});
  // slide not a multiple of the batch interval
  expect_definition_error([&] { in.window(3000ms, 1500ms); }, {"1500 ms", "1000 ms"});
  // window not a multiple of the slide
  expect_definition_error([&] { in.window(3000ms, 2000ms); }, {"3000 ms", "2000 ms"});
  // non-positive durations
  expect_definition_error([&] { in.window(0ms, 1000ms); }, {"0 ms"});
  expect_definition_error([&] { in.window(2000ms, 0ms); }, {"0 ms"});

  expect_definition_error([&] { in.count_by_window(2500ms, 1000ms); }, {"2500 ms", "1000 ms"});
  expect_definition_error([&] { in.count_by_window(4000ms, 3000ms); }, {"4000 ms", "3000 ms"});
  expect_definition_error([&] { in.reduce_by_window(iplus, 1500ms, 1000ms); }, {"1500 ms", "1000 ms"});
  expect_definition_error([&] { in.reduce_by_window(iplus, iminus, 2000ms, 1500ms); }, {"1500 ms", "1000 ms"});
  expect_definition_error([&] { in.count_by_value_and_window(3000ms, 2000ms); }, {"3000 ms", "2000 ms"});
  expect_definition_error([&] { pairs.reduce_by_key_and_window(plus, 2500ms, 1000ms); }, {"2500 ms", "1000 ms"});
  expect_definition_error([&] { pairs.reduce_by_key_and_window(plus, minus, 3000ms, 2000ms); }, {"3000 ms", "2000 ms"});
  expect_definition_error(
      [&] { pairs.reduce_by_key_and_window(plus, minus, 1000ms, 500ms, [](const std::pair<int32_t, int64_t>&) { return true; }); },
      {"500 ms", "1000 ms"});
  expect_definition_error([&] { pairs.group_by_key_and_window(2500ms, 1000ms); }, {"2500 ms", "1000 ms"});
  expect_definition_error(
      [&] {
        aggregate_by_key_and_window(pairs.table_stream(), plan({"_1"}, {agg(AggregateKind::Count, "", "n")}), 2500ms, 1000ms);
      },
      {"2500 ms", "1000 ms"});
  expect_definition_error(
      [&] {
        aggregate_by_key_and_window(pairs.table_stream(), plan({"_1"}, {agg(AggregateKind::Max, "_2", "m")}), 4000ms, 3000ms);
      },
      {"4000 ms", "3000 ms"});

  // A window of a window: durations must be multiples of the inner window's slide.
  auto inner = in.window(4000ms, 2000ms);
  expect_definition_error([&] { inner.window(3000ms, 2000ms); }, {"3000 ms", "2000 ms"});
  expect_definition_error([&] { inner.window(4000ms, 1000ms); }, {"1000 ms", "2000 ms"});
  expect_definition_error([&] { inner.count_by_window(6000ms, 4000ms); }, {"6000 ms", "4000 ms"});
}

// ---------------------------------------------------------------- count / reduce over windows

TEST(Windows, CountByWindow) {
  Env env;
  auto in = env.ctx.queue_stream<std::string>({{"a", "b"}, {}, {"c"}, {"d", "e", "f"}});
  auto sliding = collect(in.count_by_window(3000ms, 1000ms));
  auto slide2 = collect(in.count_by_window(4000ms, 2000ms));
  env.run(8);
  EXPECT_EQ(sliding->raw(), (Batches<int64_t>{{1000, {2}},
                                              {2000, {2}},
                                              {3000, {3}},
                                              {4000, {4}},
                                              {5000, {4}},
                                              {6000, {3}},
                                              {7000, {0}},
                                              {8000, {0}}}));
  EXPECT_EQ(slide2->raw(), (Batches<int64_t>{{2000, {2}}, {4000, {6}}, {6000, {4}}, {8000, {0}}}));
}

TEST(Windows, ReduceByWindowWithoutInverseGivesNothingForAnEmptyWindow) {
  Env env;
  auto in = env.ctx.queue_stream<int64_t>({{}, {1, 2}, {3}, {}, {}, {}});
  auto sum = collect(in.reduce_by_window(std::plus<int64_t>{}, 2000ms, 1000ms));
  auto max = collect(in.reduce_by_window([](int64_t a, int64_t b) { return std::max(a, b); }, 4000ms, 2000ms));
  env.run(6);
  EXPECT_EQ(sum->raw(), (Batches<int64_t>{{1000, {}}, {2000, {3}}, {3000, {6}}, {4000, {3}}, {5000, {}}, {6000, {}}}));
  EXPECT_EQ(max->raw(), (Batches<int64_t>{{2000, {2}}, {4000, {3}}, {6000, {3}}}));
}

TEST(Windows, ReduceByWindowWithInverseKeepsTheInverseReducedValue) {
  // Spark: reduceByWindow(f, inv) = map((1, _)).reduceByKeyAndWindow(f, inv).map(_._2): nothing
  // before the first record, then the incrementally maintained value (0 once everything left).
  Env env;
  auto in = env.ctx.queue_stream<int64_t>({{}, {1, 2}, {3}, {}, {}, {}});
  auto sum = collect(in.reduce_by_window(std::plus<int64_t>{}, std::minus<int64_t>{}, 2000ms, 1000ms));
  env.run(6);
  EXPECT_EQ(sum->raw(), (Batches<int64_t>{{1000, {}}, {2000, {3}}, {3000, {6}}, {4000, {3}}, {5000, {0}}, {6000, {0}}}));
}

// ---------------------------------------------------------------- by key over windows

/// Word-count pairs: b1 a a b; b2 b c; b3 -; b4 a; then empty batches.
PairDStream<std::string, int64_t> word_pairs(StreamingContext& ctx) {
  return ctx.queue_stream<std::string>({{"a", "a", "b"}, {"b", "c"}, {}, {"a"}})
      .map([](const std::string& w) { return std::pair<std::string, int64_t>(w, 1); });
}

using WC = Batches<KV<std::string, int64_t>>;

TEST(Windows, ReduceByKeyAndWindowWithoutInverse) {
  Env env;
  auto out = collect(word_pairs(env.ctx).reduce_by_key_and_window(std::plus<int64_t>{}, 3000ms, 1000ms));
  env.run(7);
  EXPECT_EQ(out->sorted(), (WC{{1000, {{"a", 2}, {"b", 1}}},
                              {2000, {{"a", 2}, {"b", 2}, {"c", 1}}},
                              {3000, {{"a", 2}, {"b", 2}, {"c", 1}}},
                              {4000, {{"a", 1}, {"b", 1}, {"c", 1}}},
                              {5000, {{"a", 1}}},
                              {6000, {{"a", 1}}},
                              {7000, {}}}));
}

TEST(Windows, ReduceByKeyAndWindowWithInverseKeepsKeysWithValueZero) {
  Env env;
  auto out = collect(
      word_pairs(env.ctx).reduce_by_key_and_window(std::plus<int64_t>{}, std::minus<int64_t>{}, 3000ms, 1000ms));
  env.run(7);
  EXPECT_EQ(out->sorted(), (WC{{1000, {{"a", 2}, {"b", 1}}},
                              {2000, {{"a", 2}, {"b", 2}, {"c", 1}}},
                              {3000, {{"a", 2}, {"b", 2}, {"c", 1}}},
                              {4000, {{"a", 1}, {"b", 1}, {"c", 1}}},
                              {5000, {{"a", 1}, {"b", 0}, {"c", 0}}},
                              {6000, {{"a", 1}, {"b", 0}, {"c", 0}}},
                              {7000, {{"a", 0}, {"b", 0}, {"c", 0}}}}));
}

TEST(Windows, ReduceByKeyAndWindowWithInverseAndFilterDropsExpiredKeys) {
  Env env;
  auto out = collect(word_pairs(env.ctx).reduce_by_key_and_window(
      std::plus<int64_t>{}, std::minus<int64_t>{}, 3000ms, 1000ms,
      [](const std::pair<std::string, int64_t>& p) { return p.second != 0; }));
  env.run(8);
  EXPECT_EQ(out->sorted(), (WC{{1000, {{"a", 2}, {"b", 1}}},
                              {2000, {{"a", 2}, {"b", 2}, {"c", 1}}},
                              {3000, {{"a", 2}, {"b", 2}, {"c", 1}}},
                              {4000, {{"a", 1}, {"b", 1}, {"c", 1}}},
                              {5000, {{"a", 1}}},
                              {6000, {{"a", 1}}},
                              {7000, {}},
                              {8000, {}}}));
}

TEST(Windows, ReduceByKeyAndWindowSlide2) {
  Env env;
  auto in = env.ctx.queue_stream<std::string>({{"a"}, {"b"}, {"a"}, {}, {"c"}, {}, {}, {}})
                .map([](const std::string& w) { return std::pair<std::string, int64_t>(w, 1); });
  auto plain = collect(in.reduce_by_key_and_window(std::plus<int64_t>{}, 4000ms, 2000ms));
  auto inv = collect(in.reduce_by_key_and_window(std::plus<int64_t>{}, std::minus<int64_t>{}, 4000ms, 2000ms));
  auto filtered = collect(in.reduce_by_key_and_window(std::plus<int64_t>{}, std::minus<int64_t>{}, 4000ms, 2000ms,
                                                      [](const std::pair<std::string, int64_t>& p) { return p.second > 0; }));
  env.run(10);
  const WC expected{{2000, {{"a", 1}, {"b", 1}}}, {4000, {{"a", 2}, {"b", 1}}}, {6000, {{"a", 1}, {"c", 1}}},
                    {8000, {{"c", 1}}},           {10000, {}}};
  EXPECT_EQ(plain->sorted(), expected);
  EXPECT_EQ(filtered->sorted(), expected);
  EXPECT_EQ(inv->sorted(), (WC{{2000, {{"a", 1}, {"b", 1}}},
                               {4000, {{"a", 2}, {"b", 1}}},
                               {6000, {{"a", 1}, {"b", 0}, {"c", 1}}},
                               {8000, {{"a", 0}, {"b", 0}, {"c", 1}}},
                               {10000, {{"a", 0}, {"b", 0}, {"c", 0}}}}));
}

TEST(Windows, ReduceByKeyAndWindowWithMax) {
  // max over a window, recombined from panes: no inverse exists
  Env env;
  auto in = as_pairs(env.ctx.queue_stream<KV<std::string, double>>(
      {{{"x", 1.5}, {"y", -1.0}}, {{"x", 0.5}}, {{"x", 0.25}, {"y", -3.0}}, {}}));
  auto out = collect(in.reduce_by_key_and_window([](double a, double b) { return std::max(a, b); }, 2000ms, 1000ms));
  env.run(5);
  EXPECT_EQ(out->sorted(), (Batches<KV<std::string, double>>{{1000, {{"x", 1.5}, {"y", -1.0}}},
                                                             {2000, {{"x", 1.5}, {"y", -1.0}}},
                                                             {3000, {{"x", 0.5}, {"y", -3.0}}},
                                                             {4000, {{"x", 0.25}, {"y", -3.0}}},
                                                             {5000, {}}}));
}

TEST(Windows, CountByValueAndWindowDropsZeroCountKeys) {
  Env env;
  auto in = env.ctx.queue_stream<std::string>({{"x", "x", "y"}, {"y"}, {}, {"z"}});
  auto out = collect(in.count_by_value_and_window(3000ms, 1000ms));
  auto slide2 = collect(in.count_by_value_and_window(2000ms, 2000ms));
  env.run(7);
  EXPECT_EQ(out->sorted(), (WC{{1000, {{"x", 2}, {"y", 1}}},
                              {2000, {{"x", 2}, {"y", 2}}},
                              {3000, {{"x", 2}, {"y", 2}}},
                              {4000, {{"y", 1}, {"z", 1}}},
                              {5000, {{"z", 1}}},
                              {6000, {{"z", 1}}},
                              {7000, {}}}));
  EXPECT_EQ(slide2->sorted(), (WC{{2000, {{"x", 2}, {"y", 2}}}, {4000, {{"z", 1}}}, {6000, {}}}));
}

TEST(Windows, GroupByKeyAndWindow) {
  Env env;
  auto in = as_pairs(env.ctx.queue_stream<KV<std::string, int32_t>>({{{"a", 1}, {"b", 2}}, {{"a", 3}}, {}, {{"b", 4}, {"b", 4}}}));
  auto out = collect(in.group_by_key_and_window(2000ms, 1000ms));
  auto slide2 = collect(in.group_by_key_and_window(4000ms, 2000ms));
  env.run(6);
  using G = KV<std::string, std::vector<int32_t>>;
  auto normalize = [](Batches<G> b) {
    for (auto& [t, batch] : b) {
      for (auto& [k, vs] : batch) std::sort(vs.begin(), vs.end());
      std::sort(batch.begin(), batch.end());
    }
    return b;
  };
  EXPECT_EQ(normalize(out->raw()), (Batches<G>{{1000, {{"a", {1}}, {"b", {2}}}},
                                               {2000, {{"a", {1, 3}}, {"b", {2}}}},
                                               {3000, {{"a", {3}}}},
                                               {4000, {{"b", {4, 4}}}},
                                               {5000, {{"b", {4, 4}}}},
                                               {6000, {}}}));
  EXPECT_EQ(normalize(slide2->raw()),
            (Batches<G>{{2000, {{"a", {1, 3}}, {"b", {2}}}}, {4000, {{"a", {1, 3}}, {"b", {2, 4, 4}}}}, {6000, {{"b", {4, 4}}}}}));
}

TEST(Windows, ReduceByKeyAndWindowOverAWindowedStream) {
  // by-key windows over a stream that itself slides every 2 s
  Env env;
  auto in = env.ctx.queue_stream<std::string>({{"a"}, {"a"}, {"b"}, {}, {}, {}})
                .map([](const std::string& w) { return std::pair<std::string, int64_t>(w, 1); });
  auto tumbling = in.window(2000ms, 2000ms);
  auto out = collect(tumbling.reduce_by_key_and_window(std::plus<int64_t>{}, std::minus<int64_t>{}, 4000ms, 2000ms,
                                                       [](const std::pair<std::string, int64_t>& p) { return p.second != 0; }));
  env.run(8);
  EXPECT_EQ(out->sorted(), (WC{{2000, {{"a", 2}}}, {4000, {{"a", 2}, {"b", 1}}}, {6000, {{"b", 1}}}, {8000, {}}}));
}

// ---------------------------------------------------------------- built-in aggregates (table_ops.hpp)

/// (word, value) records, with null values allowed.
using WordValue = KV<std::string, std::optional<int64_t>>;

TableStream word_values(StreamingContext& ctx, std::vector<std::vector<WordValue>> batches) {
  return ctx.queue_stream<WordValue>(std::move(batches)).table_stream().rename({"word", "value"});
}

TEST(Aggregates, AggregateByKeyPerBatch) {
  Env env;
  auto in = word_values(env.ctx, {{{"a", 1}, {"b", 5}, {"a", 3}, {"a", -1}, {"c", std::nullopt}}, {}, {{"b", 7}}});
  auto names = std::make_shared<std::vector<std::string>>();
  using R = std::tuple<std::string, int64_t, int64_t, int64_t, std::optional<int64_t>, std::optional<int64_t>,
                       std::optional<double>>;
  auto out = collect_table<R>(aggregate_by_key(in, plan({"word"}, {agg(AggregateKind::Count, "", "rows"),
                                                                   agg(AggregateKind::Count, "value", "n"),
                                                                   agg(AggregateKind::Sum, "value", "s"),
                                                                   agg(AggregateKind::Min, "value", "lo"),
                                                                   agg(AggregateKind::Max, "value", "hi"),
                                                                   agg(AggregateKind::Mean, "value", "avg")})),
                              names);
  env.run(3);
  EXPECT_EQ(*names, (std::vector<std::string>{"word", "rows", "n", "s", "lo", "hi", "avg"}));
  EXPECT_EQ(out->sorted(), (Batches<R>{{1000,
                                        {{"a", 3, 3, 3, -1, 3, 1.0},
                                         {"b", 1, 1, 5, 5, 5, 5.0},
                                         {"c", 1, 0, 0, std::nullopt, std::nullopt, std::nullopt}}},
                                       {2000, {}},
                                       {3000, {{"b", 1, 1, 7, 7, 7, 7.0}}}}));
}

/// b1 (a,1) (b,2); b2 (a,3); b3 (c,null); b4 (b,4); then empty batches.
std::vector<std::vector<WordValue>> window_input() {
  return {{{"a", 1}, {"b", 2}}, {{"a", 3}}, {{"c", std::nullopt}}, {{"b", 4}}};
}

TEST(Aggregates, InvertibleAggregatesOverAWindowAndKeysLeaving) {
  Env env;
  auto in = word_values(env.ctx, window_input());
  using R = std::tuple<std::string, int64_t, int64_t, int64_t, std::optional<double>>;
  const KeyedAggregation p = plan({"word"}, {agg(AggregateKind::Count, "", "rows"), agg(AggregateKind::Count, "value", "n"),
                                             agg(AggregateKind::Sum, "value", "s"), agg(AggregateKind::Mean, "value", "avg")});
  ASSERT_TRUE(p.invertible());
  auto names = std::make_shared<std::vector<std::string>>();
  auto out = collect_table<R>(aggregate_by_key_and_window(in, p, 3000ms, 1000ms), names);
  auto slide2 = collect_table<R>(aggregate_by_key_and_window(in, p, 4000ms, 2000ms));
  env.run(8);
  EXPECT_EQ(*names, (std::vector<std::string>{"word", "rows", "n", "s", "avg"}));
  const std::optional<double> none;
  EXPECT_EQ(out->sorted(), (Batches<R>{{1000, {{"a", 1, 1, 1, 1.0}, {"b", 1, 1, 2, 2.0}}},
                                       {2000, {{"a", 2, 2, 4, 2.0}, {"b", 1, 1, 2, 2.0}}},
                                       {3000, {{"a", 2, 2, 4, 2.0}, {"b", 1, 1, 2, 2.0}, {"c", 1, 0, 0, none}}},
                                       {4000, {{"a", 1, 1, 3, 3.0}, {"b", 1, 1, 4, 4.0}, {"c", 1, 0, 0, none}}},
                                       // a's count dropped to zero: a left the window
                                       {5000, {{"b", 1, 1, 4, 4.0}, {"c", 1, 0, 0, none}}},
                                       {6000, {{"b", 1, 1, 4, 4.0}}},
                                       {7000, {}},
                                       {8000, {}}}));
  EXPECT_EQ(slide2->sorted(), (Batches<R>{{2000, {{"a", 2, 2, 4, 2.0}, {"b", 1, 1, 2, 2.0}}},
                                          {4000, {{"a", 2, 2, 4, 2.0}, {"b", 2, 2, 6, 3.0}, {"c", 1, 0, 0, none}}},
                                          {6000, {{"b", 1, 1, 4, 4.0}, {"c", 1, 0, 0, none}}},
                                          {8000, {}}}));
}

TEST(Aggregates, MinAndMaxOverAWindowAreRecombinedFromPanes) {
  Env env;
  auto in = word_values(env.ctx, window_input());
  using R = std::tuple<std::string, int64_t, std::optional<int64_t>, std::optional<int64_t>>;
  const KeyedAggregation p = plan({"word"}, {agg(AggregateKind::Count, "", "rows"), agg(AggregateKind::Min, "value", "lo"),
                                             agg(AggregateKind::Max, "value", "hi")});
  ASSERT_FALSE(p.invertible());
  auto out = collect_table<R>(aggregate_by_key_and_window(in, p, 3000ms, 1000ms));
  env.run(7);
  const std::optional<int64_t> none;
  EXPECT_EQ(out->sorted(), (Batches<R>{{1000, {{"a", 1, 1, 1}, {"b", 1, 2, 2}}},
                                       {2000, {{"a", 2, 1, 3}, {"b", 1, 2, 2}}},
                                       {3000, {{"a", 2, 1, 3}, {"b", 1, 2, 2}, {"c", 1, none, none}}},
                                       {4000, {{"a", 1, 3, 3}, {"b", 1, 4, 4}, {"c", 1, none, none}}},
                                       {5000, {{"b", 1, 4, 4}, {"c", 1, none, none}}},
                                       {6000, {{"b", 1, 4, 4}}},
                                       {7000, {}}}));
}

TEST(Aggregates, AggregateStateByKeyRunsSinceTheStartAndExpiresIdleKeys) {
  Env env;
  auto in = word_values(env.ctx, {{{"a", 1}, {"b", 2}}, {{"a", 3}}, {}, {{"b", 1}}});
  using R = std::tuple<std::string, int64_t, int64_t>;
  const KeyedAggregation p = plan({"word"}, {agg(AggregateKind::Count, "", "n"), agg(AggregateKind::Sum, "value", "s")});
  auto forever = collect_table<R>(aggregate_state_by_key(in, p));
  auto expiring = collect_table<R>(aggregate_state_by_key(in, p, 2));
  env.run(7);
  EXPECT_EQ(forever->sorted(), (Batches<R>{{1000, {{"a", 1, 1}, {"b", 1, 2}}},
                                           {2000, {{"a", 2, 4}, {"b", 1, 2}}},
                                           {3000, {{"a", 2, 4}, {"b", 1, 2}}},
                                           {4000, {{"a", 2, 4}, {"b", 2, 3}}},
                                           {5000, {{"a", 2, 4}, {"b", 2, 3}}},
                                           {6000, {{"a", 2, 4}, {"b", 2, 3}}},
                                           {7000, {{"a", 2, 4}, {"b", 2, 3}}}}));
  // A key that receives no record for 2 batches is dropped; when it comes back it starts afresh.
  EXPECT_EQ(expiring->sorted(), (Batches<R>{{1000, {{"a", 1, 1}, {"b", 1, 2}}},
                                            {2000, {{"a", 2, 4}, {"b", 1, 2}}},
                                            {3000, {{"a", 2, 4}}},
                                            {4000, {{"b", 1, 1}}},
                                            {5000, {{"b", 1, 1}}},
                                            {6000, {}},
                                            {7000, {}}}));
}

TEST(Aggregates, AggregateStateByKeyExpiryWithManyKeys) {
  // Keys arriving in different orders, so that state rows and new keys interleave.
  Env env;
  std::vector<std::vector<WordValue>> batches;
  for (int b = 0; b < 10; ++b) {
    std::vector<WordValue> batch;
    for (int k = 9; k >= 0; --k)
      if ((k + b) % 3 == 0) batch.emplace_back("k" + std::to_string(k), k * 100 + b);
    batches.push_back(batch);
  }
  auto in = word_values(env.ctx, batches);
  using R = std::tuple<std::string, int64_t, int64_t>;
  const KeyedAggregation p = plan({"word"}, {agg(AggregateKind::Count, "", "n"), agg(AggregateKind::Sum, "value", "s")});
  auto out = collect_table<R>(aggregate_state_by_key(in, p, 3));
  env.run(12);
  // brute force
  Batches<R> expected;
  std::map<std::string, std::tuple<int64_t, int64_t, int>> state;  // n, s, last batch seen
  for (int b = 0; b < 12; ++b) {
    if (b < 10)
      for (const auto& [w, v] : batches[static_cast<size_t>(b)]) {
        auto& [n, s, last] = state[w];
        ++n;
        s += *v;
        last = b;
      }
    std::vector<R> rows;
    for (auto it = state.begin(); it != state.end();) {
      if (b - std::get<2>(it->second) >= 3) {
        it = state.erase(it);
        continue;
      }
      rows.emplace_back(it->first, std::get<0>(it->second), std::get<1>(it->second));
      ++it;
    }
    expected[(b + 1) * 1000] = rows;
  }
  EXPECT_EQ(out->sorted(), expected);
}

// ---------------------------------------------------------------- differential: windows vs brute force

/// One record: key, integer value, nullable floating point value (multiples of 1/4, so that
/// sums and differences are exact).
using Rec = std::tuple<std::string, int64_t, std::optional<double>>;

std::vector<std::vector<Rec>> random_batches(uint32_t seed, size_t count) {
  std::mt19937 rng(seed);
  std::vector<std::vector<Rec>> batches(count);
  for (auto& batch : batches) {
    if (rng() % 5 == 0) continue;  // empty batch
    const size_t n = rng() % 12;
    const uint32_t key_range = 2 + rng() % 6;  // some batches touch few keys
    for (size_t i = 0; i < n; ++i) {
      std::optional<double> d;
      if (rng() % 4 != 0) d = static_cast<double>(static_cast<int>(rng() % 401) - 200) / 4.0;
      batch.emplace_back("k" + std::to_string(rng() % key_range), static_cast<int64_t>(rng() % 101) - 50, d);
    }
  }
  return batches;
}

struct Expected {
  int64_t rows = 0, n = 0, si = 0;
  double sd = 0;
  std::optional<int64_t> lo;
  std::optional<double> hi;
};

/// The aggregates of every key over batches (t - window, t], recomputed from the raw batches.
std::map<std::string, Expected> brute_force(const std::vector<std::vector<Rec>>& batches, size_t last, size_t window_batches) {
  std::map<std::string, Expected> out;
  const size_t first = last + 1 >= window_batches ? last + 1 - window_batches : 0;
  for (size_t b = first; b <= last && b < batches.size(); ++b) {
    for (const auto& [k, i, d] : batches[b]) {
      Expected& e = out[k];
      ++e.rows;
      e.si += i;
      e.lo = e.lo ? std::min(*e.lo, i) : i;
      if (d) {
        ++e.n;
        e.sd += *d;
        e.hi = e.hi ? std::max(*e.hi, *d) : *d;
      }
    }
  }
  return out;
}

TEST(Aggregates, DifferentialWindowedAggregatesAgainstBruteForce) {
  const size_t batches_per_run = 26;
  using Inv = std::tuple<std::string, int64_t, int64_t, double, int64_t, std::optional<double>>;
  using NonInv = std::tuple<std::string, int64_t, std::optional<int64_t>, std::optional<double>, int64_t>;
  const KeyedAggregation invertible =
      plan({"key"}, {agg(AggregateKind::Count, "", "rows"), agg(AggregateKind::Count, "d", "n"),
                     agg(AggregateKind::Sum, "d", "sd"), agg(AggregateKind::Sum, "i", "si"), agg(AggregateKind::Mean, "d", "avg")});
  // min/max with a count and a sum: not invertible as a whole, so recombined
  const KeyedAggregation recombined =
      plan({"key"}, {agg(AggregateKind::Count, "", "rows"), agg(AggregateKind::Min, "i", "lo"),
                     agg(AggregateKind::Max, "d", "hi"), agg(AggregateKind::Sum, "i", "si")});
  ASSERT_TRUE(invertible.invertible());
  ASSERT_FALSE(recombined.invertible());

  for (uint32_t seed : {1u, 2u, 3u, 4u, 5u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const auto batches = random_batches(seed, batches_per_run);
    Env env;
    auto in = env.ctx.queue_stream<Rec>(batches).table_stream().rename({"key", "i", "d"});
    struct Run {
      size_t window_slides, slide_batches;
      std::shared_ptr<Recorder<Inv>> inv;
      std::shared_ptr<Recorder<NonInv>> non_inv;
    };
    std::vector<Run> runs;
    for (size_t slide_batches : {1u, 2u})
      for (size_t w = 2; w <= 8; ++w) {
        const Duration slide{static_cast<int64_t>(slide_batches) * 1000};
        const Duration window = slide * static_cast<int64_t>(w);
        runs.push_back({w, slide_batches, collect_table<Inv>(aggregate_by_key_and_window(in, invertible, window, slide)),
                        collect_table<NonInv>(aggregate_by_key_and_window(in, recombined, window, slide))});
      }
    env.run(batches_per_run + 4);  // a few more batches: the last records leave the short windows

    for (const Run& r : runs) {
      SCOPED_TRACE("window " + std::to_string(r.window_slides) + " slides of " + std::to_string(r.slide_batches) + " batches");
      Batches<Inv> want_inv;
      Batches<NonInv> want_non_inv;
      for (size_t b = r.slide_batches - 1; b < batches_per_run + 4; b += r.slide_batches) {
        const int64_t t = static_cast<int64_t>(b + 1) * 1000;
        auto& vi = want_inv[t];
        auto& vn = want_non_inv[t];
        for (const auto& [k, e] : brute_force(batches, b, r.window_slides * r.slide_batches)) {
          std::optional<double> avg;
          if (e.n > 0) avg = e.sd / static_cast<double>(e.n);
          vi.emplace_back(k, e.rows, e.n, e.sd, e.si, avg);
          vn.emplace_back(k, e.rows, e.lo, e.hi, e.si);
        }
      }
      EXPECT_EQ(r.inv->sorted(), want_inv);
      EXPECT_EQ(r.non_inv->sorted(), want_non_inv);
    }
  }
}

TEST(Windows, DifferentialTypedReduceByKeyAndWindowAgainstBruteForce) {
  const size_t batches_per_run = 26;
  using P = KV<std::string, int64_t>;
  for (uint32_t seed : {11u, 12u, 13u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const auto batches = random_batches(seed, batches_per_run);
    Env env;
    auto pairs = env.ctx.queue_stream<Rec>(batches).map([](const Rec& r) { return P(std::get<0>(r), std::get<1>(r)); });
    auto counts = pairs.map_values([](int64_t) { return int64_t{1}; });
    struct Run {
      size_t w, s;
      std::shared_ptr<Recorder<P>> plain, inv, count_filtered;
    };
    std::vector<Run> runs;
    for (size_t s : {1u, 2u})
      for (size_t w = 2; w <= 8; ++w) {
        const Duration slide{static_cast<int64_t>(s) * 1000};
        const Duration window = slide * static_cast<int64_t>(w);
        runs.push_back({w, s, collect(pairs.reduce_by_key_and_window(std::plus<int64_t>{}, window, slide)),
                        collect(pairs.reduce_by_key_and_window(std::plus<int64_t>{}, std::minus<int64_t>{}, window, slide)),
                        collect(counts.reduce_by_key_and_window(std::plus<int64_t>{}, std::minus<int64_t>{}, window, slide,
                                                                [](const P& p) { return p.second != 0; }))});
      }
    env.run(batches_per_run + 4);
    for (const Run& r : runs) {
      SCOPED_TRACE("window " + std::to_string(r.w) + " slides of " + std::to_string(r.s) + " batches");
      Batches<P> want_plain, want_inv, want_count;
      std::map<std::string, bool> seen;  // keys seen up to t: with an inverse and no filter they stay
      for (size_t b = 0; b < batches_per_run + 4; ++b) {
        if (b < batches.size())
          for (const auto& rec : batches[b]) seen[std::get<0>(rec)] = true;
        if ((b + 1) % r.s != 0) continue;
        const int64_t t = static_cast<int64_t>(b + 1) * 1000;
        const auto window = brute_force(batches, b, r.w * r.s);
        auto& plain = want_plain[t];
        auto& count = want_count[t];
        for (const auto& [k, e] : window) {
          plain.emplace_back(k, e.si);
          count.emplace_back(k, e.rows);
        }
        auto& inv = want_inv[t];
        for (const auto& [k, unused] : seen) {
          (void)unused;
          auto it = window.find(k);
          inv.emplace_back(k, it == window.end() ? 0 : it->second.si);
        }
      }
      EXPECT_EQ(r.plain->sorted(), want_plain);
      EXPECT_EQ(r.inv->sorted(), want_inv);
      EXPECT_EQ(r.count_filtered->sorted(), want_count);
    }
  }
}

}  // namespace
