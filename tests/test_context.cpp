// StreamingContext life cycle, written from Spark Streaming's documented behaviour: start
// once, outputs required, errors in user code stop the context and surface from
// await_termination naming the operator and the batch, graceful and immediate stops,
// listeners, stopping when finite sources are exhausted, and the ManualClock test driver.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cpu_delegating_backend.hpp"
#include "sluice/sluice.hpp"

using namespace sluice;
using namespace std::chrono_literals;

namespace {

// ---------------------------------------------------------------- helpers

template <class T> using Batches = std::map<int64_t, std::vector<T>>;

template <class T> class Recorder {
 public:
  void record(Time t, std::vector<T> batch) {
    std::lock_guard lock(mutex_);
    EXPECT_EQ(out_.count(t.ms), 0u) << "two outputs at batch time " << t.ms;
    out_[t.ms] = std::move(batch);
  }
  Batches<T> sorted() const {
    std::lock_guard lock(mutex_);
    Batches<T> b = out_;
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

ContextOptions manual(std::shared_ptr<ManualClock> clock) {
  ContextOptions o;
  o.batch_interval = 1000ms;
  o.clock = std::move(clock);
  return o;
}

/// Expects @p f to throw sluice::Error whose message contains every one of @p parts.
template <class F> void expect_error(F f, std::vector<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "no sluice::Error thrown";
  } catch (const sluice::Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

/// A receiver-like source: the test pushes records, each batch takes what was pushed since
/// the last one; it records the batch times it was cut at and when it was stopped.
class PushSource final : public Source {
 public:
  std::string name() const override { return "push"; }
  const Schema& schema() const override { return schema_; }
  void start(Time, Duration) override {
    if (fail_start) throw Error("push source cannot start");
  }
  void push(std::vector<int32_t> records) {
    std::lock_guard lock(mutex_);
    held_.insert(held_.end(), records.begin(), records.end());
  }
  Table next_batch(Time t) override {
    std::lock_guard lock(mutex_);
    cut_.push_back(t.ms);
    std::vector<int32_t> out;
    out.swap(held_);
    changed_.notify_all();
    return encode(out);
  }
  bool has_pending() const override {
    std::lock_guard lock(mutex_);
    return !held_.empty();
  }
  void stop() override {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    changed_.notify_all();
  }
  /// Waits until the batch of @p ms was cut.
  bool wait_cut(int64_t ms) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 10s, [&] { return std::find(cut_.begin(), cut_.end(), ms) != cut_.end(); });
  }
  bool wait_stopped() {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 10s, [&] { return stopped_; });
  }
  bool fail_start = false;

 private:
  Schema schema_ = schema_of<int32_t>();
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<int32_t> held_;
  std::vector<int64_t> cut_;
  bool stopped_ = false;
};

/// A one-shot gate: wait() blocks until open().
class Gate {
 public:
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return open_; });
  }
  void arrive() {
    std::lock_guard lock(mutex_);
    arrived_ = true;
    changed_.notify_all();
  }
  bool wait_arrived() {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 10s, [&] { return arrived_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = false;
  bool arrived_ = false;
};

class RecordingListener final : public StreamingListener {
 public:
  void on_batch_started(const BatchInfo& info) override {
    std::lock_guard lock(mutex);
    started.push_back(info);
  }
  void on_batch_completed(const BatchInfo& info) override {
    std::lock_guard lock(mutex);
    completed.push_back(info);
  }
  void on_stream_stopped(const MetricsSummary& summary) override {
    std::lock_guard lock(mutex);
    stopped.push_back(summary);
  }
  std::mutex mutex;
  std::vector<BatchInfo> started, completed;
  std::vector<MetricsSummary> stopped;
};

// ---------------------------------------------------------------- start

TEST(Context, StartingTwiceIsAnError) {
  auto clock = std::make_shared<ManualClock>();
  StreamingContext ctx(manual(clock));
  auto out = collect(ctx.queue_stream<int32_t>({{1}}));
  ctx.start();
  EXPECT_TRUE(ctx.running());
  expect_error([&] { ctx.start(); }, {"started"});
  // the running context is unaffected
  ctx.advance_batches(1);
  ctx.stop();
  EXPECT_FALSE(ctx.running());
  EXPECT_EQ(out->sorted(), (Batches<int32_t>{{1000, {1}}}));
  // a stopped context cannot be started again either
  EXPECT_THROW(ctx.start(), sluice::Error);
}

TEST(Context, StartingWithoutOutputsIsAnError) {
  auto clock = std::make_shared<ManualClock>();
  StreamingContext ctx(manual(clock));
  auto in = ctx.queue_stream<int32_t>({{1}});
  auto mapped = in.map([](int32_t x) { return x + 1; });  // transformations alone are not outputs
  (void)mapped;
  expect_error([&] { ctx.start(); }, {"output"});
  EXPECT_FALSE(ctx.running());
}

TEST(Context, AddingOperationsAfterStartIsAnError) {
  auto clock = std::make_shared<ManualClock>();
  StreamingContext ctx(manual(clock));
  auto in = ctx.queue_stream<int32_t>({{1}});
  in.print();
  ctx.start();
  EXPECT_THROW(in.map([](int32_t x) { return x; }), sluice::Error);
  EXPECT_THROW(in.print(), sluice::Error);
  ctx.stop();
}

TEST(Context, ASourceThatCannotStartFailsStart) {
  auto clock = std::make_shared<ManualClock>();
  StreamingContext ctx(manual(clock));
  auto source = std::make_unique<PushSource>();
  source->fail_start = true;
  DStream<int32_t> in(ctx.add_source(std::move(source)));
  in.print();
  expect_error([&] { ctx.start(); }, {"push source cannot start"});
  EXPECT_FALSE(ctx.running());
}

// ---------------------------------------------------------------- errors in user code

TEST(Context, AThrowingFunctorStopsTheContextAndAwaitTerminationRethrows) {
  auto clock = std::make_shared<ManualClock>();
  StreamingContext ctx(manual(clock));
  auto in = ctx.queue_stream<int32_t>({{1}, {2}, {3}});
  auto out = collect(in.map([](int32_t x) {
    if (x == 2) throw std::runtime_error("boom on two");
    return x * 10;
  }));
  ctx.start();
  // advance_batches reports the failure of a batch it waits for
  EXPECT_THROW(ctx.advance_batches(3), sluice::Error);
  expect_error([&] { ctx.await_termination(); }, {"map", "2000 ms", "boom on two"});
  // awaiting again reports the same error; no batch after the failed one ran
  expect_error([&] { ctx.await_termination(5s); }, {"map", "2000 ms"});
  EXPECT_THROW(ctx.advance_batches(2), sluice::Error);
  EXPECT_EQ(out->sorted(), (Batches<int32_t>{{1000, {10}}}));
  ctx.stop();  // stopping after a failure does not throw
  EXPECT_FALSE(ctx.running());
}

TEST(Context, AThrowingOutputNamesTheOutputAndTheBatch) {
  auto clock = std::make_shared<ManualClock>();
  StreamingContext ctx(manual(clock));
  auto in = ctx.queue_stream<int32_t>({{1}, {2}});
  in.foreach_batch([](Time t, const std::vector<int32_t>&) {
    if (t.ms == 1000) throw std::logic_error("sink is full");
  });
  ctx.start();
  EXPECT_THROW(ctx.advance_batches(1), sluice::Error);
  expect_error([&] { ctx.await_termination(5s); }, {"foreach_batch", "1000 ms", "sink is full"});
}

TEST(Context, AFunctorThrowingANonStandardExceptionIsReportedToo) {
  auto clock = std::make_shared<ManualClock>();
  StreamingContext ctx(manual(clock));
  auto in = ctx.queue_stream<int32_t>({{1}, {2}});
  auto out = collect(in.filter([](int32_t x) -> bool {
    if (x == 2) throw 42;
    return true;
  }));
  ctx.start();
  EXPECT_THROW(ctx.advance_batches(2), sluice::Error);
  expect_error([&] { ctx.await_termination(5s); }, {"filter", "2000 ms"});
  EXPECT_EQ(out->sorted(), (Batches<int32_t>{{1000, {1}}}));
}

TEST(Context, AnErrorInAWindowedOperatorNamesItsBatch) {
  auto clock = std::make_shared<ManualClock>();
  StreamingContext ctx(manual(clock));
  auto in = ctx.queue_stream<std::string>({{"a"}, {"b"}, {"a"}, {"c"}})
                .map([](const std::string& w) { return std::pair<std::string, int64_t>(w, 1); });
  auto out = collect(in.reduce_by_key_and_window(
      [](int64_t a, int64_t b) -> int64_t {
        if (a + b > 1) throw std::overflow_error("key seen twice");
        return a + b;
      },
      4000ms, 2000ms));
  ctx.start();
  // "a" meets itself only when the window at 4000 ms combines both of its panes
  EXPECT_THROW(ctx.advance_batches(4), sluice::Error);
  expect_error([&] { ctx.await_termination(5s); }, {"reduce_by_key_and_window", "4000 ms", "key seen twice"});
  EXPECT_EQ(out->sorted(), (Batches<std::pair<std::string, int64_t>>{{2000, {{"a", 1}, {"b", 1}}}}));
}

// ---------------------------------------------------------------- stop

/// Runs batch 1000 with its processing blocked, cuts 2000 and 3000 behind it, receives one
/// more record, then stops with @p graceful while batch 1000 is still being processed.
std::pair<Batches<int32_t>, MetricsSummary> stop_while_busy(bool graceful) {
  Gate gate;  // outlives the context
  auto clock = std::make_shared<ManualClock>();
  StreamingContext ctx(manual(clock));
  auto owned = std::make_unique<PushSource>();
  PushSource* source = owned.get();
  DStream<int32_t> in(ctx.add_source(std::move(owned)));
  auto out = std::make_shared<Recorder<int32_t>>();
  in.foreach_batch([&gate, out](Time t, const std::vector<int32_t>& batch) {
    out->record(t, batch);
    if (t.ms == 1000) {
      gate.arrive();
      gate.wait();
    }
  });
  source->push({1});
  ctx.start();
  clock->advance(1000ms);
  EXPECT_TRUE(gate.wait_arrived());  // batch 1000 is being processed
  source->push({2});
  clock->advance(1000ms);
  EXPECT_TRUE(source->wait_cut(2000));
  source->push({3, 33});
  clock->advance(1000ms);
  EXPECT_TRUE(source->wait_cut(3000));
  source->push({4});  // received, in no batch yet
  std::thread stopper([&] { ctx.stop(graceful); });
  EXPECT_TRUE(source->wait_stopped());  // the stop is under way: receiving has stopped
  gate.open();
  stopper.join();
  EXPECT_FALSE(ctx.running());
  EXPECT_TRUE(ctx.await_termination(1s));
  return {out->sorted(), ctx.summary()};
}

TEST(Context, GracefulStopProcessesEveryBatchOfDataAlreadyReceived) {
  auto [batches, summary] = stop_while_busy(true);
  // 2000 and 3000 were waiting; the record received before the stop comes in one more batch
  EXPECT_EQ(batches, (Batches<int32_t>{{1000, {1}}, {2000, {2}}, {3000, {3, 33}}, {4000, {4}}}));
  EXPECT_EQ(summary.batches, 4u);
  EXPECT_EQ(summary.records_in, 5u);
}

TEST(Context, ImmediateStopEndsAfterTheBatchInProgress) {
  auto [batches, summary] = stop_while_busy(false);
  EXPECT_EQ(batches, (Batches<int32_t>{{1000, {1}}}));
  EXPECT_EQ(summary.batches, 1u);
  EXPECT_EQ(summary.records_in, 1u);
}

TEST(Context, StopIsIdempotentAndAllowedBeforeStart) {
  {
    auto clock = std::make_shared<ManualClock>();
    StreamingContext ctx(manual(clock));
    ctx.queue_stream<int32_t>({{1}}).print();
    ctx.stop();
    ctx.stop(false);
    EXPECT_FALSE(ctx.running());
    EXPECT_THROW(ctx.start(), sluice::Error);
    EXPECT_TRUE(ctx.await_termination(1s));
  }
  {
    auto clock = std::make_shared<ManualClock>();
    StreamingContext ctx(manual(clock));
    auto out = collect(ctx.queue_stream<int32_t>({{1}, {2}}));
    ctx.start();
    ctx.advance_batches(2);
    ctx.stop();
    ctx.stop();
    ctx.stop(false);
    EXPECT_TRUE(ctx.await_termination());
    EXPECT_EQ(out->sorted(), (Batches<int32_t>{{1000, {1}}, {2000, {2}}}));
  }
}

TEST(Context, AwaitTerminationTimesOutWhileRunning) {
  auto clock = std::make_shared<ManualClock>();
  StreamingContext ctx(manual(clock));
  ctx.queue_stream<int32_t>({{1}}).print();
  ctx.start();
  EXPECT_FALSE(ctx.await_termination(50ms));
  EXPECT_TRUE(ctx.running());
  std::thread stopper([&] {
    std::this_thread::sleep_for(20ms);
    ctx.stop();
  });
  EXPECT_TRUE(ctx.await_termination(10s));
  stopper.join();
}

// ---------------------------------------------------------------- listeners

TEST(Context, ListenersReceiveEveryBatchAndTheSummary) {
  auto clock = std::make_shared<ManualClock>();
  StreamingContext ctx(manual(clock));
  auto listener = std::make_shared<RecordingListener>();
  ctx.add_listener(listener);
  auto a = ctx.queue_stream<int32_t>({{1, 2, 3}, {}, {4, 5}});
  auto b = ctx.queue_stream<int32_t>({{9}, {9, 9}});
  a.union_with(b).print();
  testing::internal::CaptureStdout();
  ctx.start();
  ctx.advance_batches(1);
  ctx.advance_batches(1);
  ctx.advance_batches(2);  // batch 3000 is processed 1000 ms late
  ctx.stop();
  ctx.stop();
  testing::internal::GetCapturedStdout();

  std::lock_guard lock(listener->mutex);
  ASSERT_EQ(listener->completed.size(), 4u);
  ASSERT_EQ(listener->started.size(), 4u);
  const int64_t times[] = {1000, 2000, 3000, 4000};
  const size_t records[] = {4, 2, 2, 0};
  const int64_t delays[] = {0, 0, 1000, 0};
  for (size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE("batch " + std::to_string(times[i]));
    const BatchInfo& c = listener->completed[i];
    EXPECT_EQ(listener->started[i].batch_time.ms, times[i]);
    EXPECT_EQ(c.batch_time.ms, times[i]);
    EXPECT_EQ(c.records_in, records[i]);
    EXPECT_EQ(c.malformed_records, 0u);
    EXPECT_EQ(c.dropped_records, 0u);
    EXPECT_EQ(c.scheduling_delay.count(), delays[i]);
    EXPECT_GE(c.processing_time.count(), 0);
    EXPECT_EQ(c.total_delay, c.scheduling_delay + c.processing_time);
  }
  ASSERT_EQ(listener->stopped.size(), 1u);  // once, however often stop() is called
  const MetricsSummary& s = listener->stopped[0];
  EXPECT_EQ(s.batches, 4u);
  EXPECT_EQ(s.records_in, 8u);
  EXPECT_EQ(s.max_scheduling_delay.count(), 1000);
  EXPECT_EQ(ctx.summary().batches, 4u);
  EXPECT_EQ(ctx.summary().records_in, 8u);
}

// ---------------------------------------------------------------- stop_when_sources_finished

TEST(Context, StopWhenSourcesFinishedEndsAwaitTermination) {
  auto clock = std::make_shared<ManualClock>(Time{0}, /*auto_advance=*/true);
  ContextOptions options = manual(clock);
  options.stop_when_sources_finished = true;
  StreamingContext ctx(options);
  auto listener = std::make_shared<RecordingListener>();
  ctx.add_listener(listener);
  auto a = ctx.queue_stream<int32_t>({{1}, {2}, {3}});
  auto b = ctx.queue_stream<int32_t>({{10, 20}}, /*one_at_a_time=*/false);
  auto out = collect(a.union_with(b));
  ctx.start();
  EXPECT_TRUE(ctx.await_termination(10s));
  EXPECT_FALSE(ctx.running());
  // the batches of the longest queue, and none after
  EXPECT_EQ(out->sorted(), (Batches<int32_t>{{1000, {1, 10, 20}}, {2000, {2}}, {3000, {3}}}));
  std::lock_guard lock(listener->mutex);
  ASSERT_EQ(listener->stopped.size(), 1u);
  EXPECT_EQ(listener->stopped[0].batches, 3u);
  EXPECT_EQ(listener->stopped[0].records_in, 5u);
}

TEST(Context, StopWhenSourcesFinishedWithAdvanceBatches) {
  auto clock = std::make_shared<ManualClock>();
  ContextOptions options = manual(clock);
  options.stop_when_sources_finished = true;
  StreamingContext ctx(options);
  auto out = collect(ctx.queue_stream<int32_t>({{1}, {}, {3}}));
  ctx.start();
  ctx.advance_batches(2);
  EXPECT_FALSE(ctx.await_termination(20ms));  // one batch still queued
  ctx.advance_batches(5);                     // returns once processing has ended
  EXPECT_TRUE(ctx.await_termination(10s));
  EXPECT_EQ(out->sorted(), (Batches<int32_t>{{1000, {1}}, {2000, {}}, {3000, {3}}}));
}

TEST(Context, StopWhenSourcesFinishedOnTheSystemClock) {
  ContextOptions options;
  options.batch_interval = 20ms;
  options.stop_when_sources_finished = true;
  StreamingContext ctx(options);
  auto out = collect(ctx.queue_stream<int32_t>({{1}, {2, 2}, {3}}).count());
  ctx.start();
  ASSERT_TRUE(ctx.await_termination(10s));
  const auto batches = out->sorted();
  ASSERT_EQ(batches.size(), 3u);
  std::vector<int64_t> counts;
  int64_t previous = -1;
  for (const auto& [t, b] : batches) {
    EXPECT_EQ(t % 20, 0) << t;  // batch times are multiples of the interval
    if (previous >= 0) {
      EXPECT_EQ(t - previous, 20);
    }
    previous = t;
    ASSERT_EQ(b.size(), 1u);
    counts.push_back(b[0]);
  }
  EXPECT_EQ(counts, (std::vector<int64_t>{1, 2, 1}));
}

// ---------------------------------------------------------------- advance_batches

TEST(Context, AdvanceBatchesNeedsAManualClock) {
  StreamingContext ctx(1000ms);
  ctx.queue_stream<int32_t>({{1}}).print();
  expect_error([&] { ctx.advance_batches(1); }, {"ManualClock"});
  ctx.start();
  expect_error([&] { ctx.advance_batches(1); }, {"ManualClock"});
  ctx.stop(false);
}

TEST(Context, AdvanceBatchesNeedsARunningContext) {
  auto clock = std::make_shared<ManualClock>();
  StreamingContext ctx(manual(clock));
  ctx.queue_stream<int32_t>({{1}}).print();
  EXPECT_THROW(ctx.advance_batches(1), sluice::Error);
}

TEST(Context, AdvanceBatchesWaitsForTheBatchesItMovesPast) {
  auto clock = std::make_shared<ManualClock>();
  StreamingContext ctx(manual(clock));
  std::atomic<int> processed{0};
  ctx.queue_stream<int32_t>({{1}, {2}, {3}}).foreach_batch([&](Time, const std::vector<int32_t>&) {
    std::this_thread::sleep_for(5ms);  // slow processing
    ++processed;
  });
  ctx.start();
  ctx.advance_batches(3);
  EXPECT_EQ(processed.load(), 3);
  ctx.advance_batches(0);
  EXPECT_EQ(processed.load(), 3);
  ctx.advance_batches(1);
  EXPECT_EQ(processed.load(), 4);
  ctx.stop();
}

}  // namespace

namespace {

/// A CPU backend that records the prefetch hooks and checks the buffers it was shown are the
/// ones the operators get.
class PrefetchRecorder final : public CpuDelegatingBackend {
 public:
  std::string_view name() const override { return "prefetch-recorder"; }
  void prefetch(Time batch, const Table& source_batch) override {
    std::lock_guard lock(mutex);
    events.push_back("prefetch " + std::to_string(batch.ms) + " rows " + std::to_string(source_batch.num_rows()));
    if (source_batch.num_rows() > 0) buffer_of[batch.ms] = source_batch.column(0).data();
  }
  void retire_prefetched(Time through) override {
    std::lock_guard lock(mutex);
    events.push_back("retire " + std::to_string(through.ms));
  }
  std::mutex mutex;
  std::vector<std::string> events;
  std::map<int64_t, const void*> buffer_of;
};

}  // namespace

TEST(Context, SourceBatchesArePrefetchedBeforeTheyAreProcessedAndRetiredAfter) {
  auto recorder = std::make_shared<PrefetchRecorder>();
  auto clock = std::make_shared<ManualClock>();
  ContextOptions o;
  o.batch_interval = 1000ms;
  o.clock = clock;
  o.backend_instance = recorder;
  StreamingContext ctx(o);
  EXPECT_EQ(&ctx.backend(), recorder.get());
  std::mutex m;
  std::map<int64_t, const void*> processed_buffer;
  ctx.queue_stream(std::vector<std::vector<int64_t>>{{1, 2}, {3}})
      .table_stream()
      .foreach_batch([&](Time t, const Table& batch) {
        std::lock_guard lock(m);
        if (batch.num_rows() > 0) processed_buffer[t.ms] = batch.column(0).data();
      });
  ctx.start();
  ctx.advance_batches(3);
  ctx.stop();
  std::lock_guard lock(recorder->mutex);
  ASSERT_GE(recorder->events.size(), 7u);
  // Batch 1000 is prefetched before it runs; each run retires what came before, then itself.
  EXPECT_EQ(recorder->events[0], "prefetch 1000 rows 2");
  for (int64_t t : {1000, 2000, 3000}) {
    const auto at = [&](const std::string& e) {
      return std::find(recorder->events.begin(), recorder->events.end(), e) - recorder->events.begin();
    };
    const std::string ms = std::to_string(t);
    EXPECT_LT(at("prefetch " + ms + " rows " + (t == 1000 ? "2" : t == 2000 ? "1" : "0")), at("retire " + std::to_string(t - 1)));
    EXPECT_LT(at("retire " + std::to_string(t - 1)), at("retire " + ms));
  }
  // The operators saw the very buffers that were prefetched (what makes the copy reusable).
  std::lock_guard out_lock(m);
  EXPECT_EQ(processed_buffer.at(1000), recorder->buffer_of.at(1000));
  EXPECT_EQ(processed_buffer.at(2000), recorder->buffer_of.at(2000));
}
