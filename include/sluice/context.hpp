#pragma once
/// @file context.hpp
/// @brief StreamingContext: the batch clock, the operator graph and the scheduler.

#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sluice/backend.hpp"
#include "sluice/clock.hpp"
#include "sluice/metrics.hpp"
#include "sluice/source.hpp"
#include "sluice/stream_graph.hpp"

namespace sluice {

template <class T> class DStream;

/// @brief How a context runs.
struct ContextOptions {
  /// Every batch holds the records received during one interval.
  Duration batch_interval{1000};
  BackendKind backend = BackendKind::Cpu;
  /// A backend instance to run on instead of one made from @p backend (custom backends,
  /// tests). SLUICE_BACKEND does not override it.
  std::shared_ptr<ExecutionBackend> backend_instance;
  /// The batch clock; a SystemClock when null. Tests pass a ManualClock.
  std::shared_ptr<Clock> clock;
  /// Stop (gracefully) once every source reports finished() and its last batch ran.
  bool stop_when_sources_finished = false;
  /// File that receives malformed records as JSON lines; empty: counted only.
  std::string dead_letter_path;
  /// Batches cut but not yet processed before the batch cutter waits (bounded memory when
  /// processing falls behind: the sources' queues then fill and apply their policy).
  size_t max_pending_batches = 4;
};

/// @brief The entry point: create streams from sources, transform them, register outputs,
/// then start(). Spark's StreamingContext semantics: the first batch time is the start time
/// rounded up to the batch interval; an output operation runs at every batch where its
/// stream has output; a batch whose processing throws stops the context and
/// await_termination() rethrows the error.
///
/// @code
/// sluice::StreamingContext ctx(std::chrono::seconds(1));
/// auto lines = ctx.socket_text_stream("localhost", 9999);
/// lines.flat_map([](const std::string& l) { return sluice::split_words(l); })
///      .map([](const std::string& w) { return std::pair{w, int64_t{1}}; })
///      .reduce_by_key(std::plus<>{})
///      .print();
/// ctx.start();
/// ctx.await_termination();
/// @endcode
class StreamingContext {
 public:
  explicit StreamingContext(ContextOptions options);
  explicit StreamingContext(Duration batch_interval) : StreamingContext(options_with_interval(batch_interval)) {}
  StreamingContext(const StreamingContext&) = delete;
  StreamingContext& operator=(const StreamingContext&) = delete;
  /// Stops without waiting for pending batches.
  ~StreamingContext();

  const ContextOptions& options() const { return options_; }
  Duration batch_interval() const { return options_.batch_interval; }
  ExecutionBackend& backend() { return *backend_; }
  Clock& clock() { return *clock_; }

  // ---- sources ----
  /// Lines of text from a TCP server; reconnects with backoff when the peer goes away.
  DStream<std::string> socket_text_stream(std::string host, uint16_t port, SourceOptions options = {});
  /// Lines of each new file moved into @p directory, every file exactly once.
  DStream<std::string> text_file_stream(std::string directory, SourceOptions options = {});
  /// In-memory batches (tests, examples): one per batch time, or all in the first batch.
  /// A stream of pairs comes back as a PairDStream.
  template <class T> auto queue_stream(std::vector<std::vector<T>> batches, bool one_at_a_time = true);
  /// Seeded synthetic records (see GeneratorOptions for the schema of each kind).
  TableStream generator(GeneratorOptions generator, SourceOptions options = {});
  /// Any source.
  TableStream add_source(std::unique_ptr<Source> source);

  // ---- running ----
  /// Starts the sources and the scheduler. Definition errors surface before this returns.
  void start();
  /// Waits until the context stops; true if it stopped within @p timeout (forever when
  /// none). Rethrows the error that stopped it, if any.
  bool await_termination(std::optional<Duration> timeout = std::nullopt);
  /// Stops the context. @p graceful: stop receiving, then process every batch of data
  /// already received; otherwise stop after the batch in progress. Idempotent.
  void stop(bool graceful = true);
  bool running() const { return state_.load() == State::Running; }

  /// With a ManualClock: moves the clock @p n batch intervals forward and waits until
  /// those batches have been processed (deterministic tests).
  void advance_batches(size_t n);

  // ---- metrics ----
  void add_listener(std::shared_ptr<StreamingListener> listener);
  MetricsSummary summary() const;

  /// The graph's nodes, in creation order (used by TableStream and the pipeline builder).
  StreamNode::Ptr add_node(StreamNode::Ptr node);
  void add_output(StreamNode::Ptr node);

 private:
  static ContextOptions options_with_interval(Duration batch_interval) {
    ContextOptions o;
    o.batch_interval = batch_interval;
    return o;
  }
  enum class State { Initialized, Running, Stopped };
  struct PendingBatch {
    Time time;
    std::chrono::steady_clock::time_point cut_at;
  };
  void cut_batches();
  void process_batches();
  void run_batch(Time t, Duration scheduling_delay);
  void acknowledge_sources(Time completed);
  void finish(std::exception_ptr error);

  ContextOptions options_;
  std::shared_ptr<ExecutionBackend> backend_;
  std::shared_ptr<Clock> clock_;
  std::unique_ptr<DeadLetterSink> dead_letters_;
  std::vector<StreamNode::Ptr> nodes_;
  std::vector<StreamNode::Ptr> outputs_;
  std::vector<StreamNode*> active_nodes_;  // nodes some output depends on, in order
  std::vector<SourceNode*> sources_;
  /// Per source: the outputs that depend on it and the last batch acknowledged to it.
  struct SourceAcknowledgement {
    SourceNode* source;
    std::vector<const StreamNode*> outputs;
    Time acknowledged;
  };
  std::vector<SourceAcknowledgement> acknowledgements_;
  std::vector<std::shared_ptr<StreamingListener>> listeners_;

  std::atomic<State> state_{State::Initialized};
  Time zero_time_{};
  std::thread cutter_;
  std::thread processor_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Time> pending_;            // batch times cut, waiting to be processed
  Time last_processed_{};
  bool cutting_done_ = false;           // no more batch times will be cut
  bool abort_ = false;                  // non-graceful stop: drop pending batches
  bool processor_exited_ = false;       // no more batches will be processed
  bool stopped_ = false;
  std::exception_ptr error_;
  MetricsSummary summary_;
};

}  // namespace sluice

#include "sluice/dstream.hpp"

namespace sluice {
template <class T>
auto StreamingContext::queue_stream(std::vector<std::vector<T>> batches, bool one_at_a_time) {
  std::vector<Table> tables;
  tables.reserve(batches.size());
  for (const auto& b : batches) tables.push_back(encode(b));
  return detail::stream_for_t<T>(add_source(make_queue_source(schema_of<T>(), std::move(tables), one_at_a_time)));
}
}  // namespace sluice
