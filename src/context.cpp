#include "sluice/context.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <unordered_set>

#include "sluice/log.hpp"

namespace sluice {
namespace {

/// Malformed records as JSON lines: {"time":..,"origin":..,"reason":..,"record":..}.
class FileDeadLetterSink final : public DeadLetterSink {
 public:
  explicit FileDeadLetterSink(const std::string& path) : path_(path), out_(path, std::ios::app | std::ios::binary) {
    if (!out_) throw Error("dead-letter file " + path + " cannot be opened for writing");
  }
  void write(Time batch_time, std::string_view origin, std::string_view record, std::string_view reason) override {
    std::string line = "{\"time\":" + std::to_string(batch_time.ms) +
                       ",\"origin\":" + value_to_json(std::string(origin)) +
                       ",\"reason\":" + value_to_json(std::string(reason)) +
                       ",\"record\":" + value_to_json(std::string(record)) + "}\n";
    std::lock_guard lock(mutex_);
    out_ << line;
    out_.flush();
    if (!out_) logging::error("dead-letter file " + path_ + ": write failed");
  }

 private:
  std::string path_;
  std::mutex mutex_;
  std::ofstream out_;
};

/// SLUICE_BACKEND=cpu|cuda|auto overrides the backend every context would use: one switch
/// runs whole programs and test suites on another backend.
BackendKind backend_from_environment(BackendKind configured) {
  const char* value = std::getenv("SLUICE_BACKEND");
  if (!value || !*value) return configured;
  try {
    return parse_backend(value);
  } catch (const Error& e) {
    throw Error(std::string("environment variable SLUICE_BACKEND: ") + e.what());
  }
}

}  // namespace

StreamingContext::StreamingContext(ContextOptions options) : options_(std::move(options)) {
  SLUICE_EXPECTS(options_.batch_interval.count() > 0,
                 "batch interval must be positive, got " + std::to_string(options_.batch_interval.count()) + " ms");
  SLUICE_EXPECTS(options_.max_pending_batches > 0, "max_pending_batches must be at least 1");
  backend_ = options_.backend_instance ? options_.backend_instance : make_backend(backend_from_environment(options_.backend));
  clock_ = options_.clock ? options_.clock : std::make_shared<SystemClock>();
  if (!options_.dead_letter_path.empty()) dead_letters_ = std::make_unique<FileDeadLetterSink>(options_.dead_letter_path);
}

StreamingContext::~StreamingContext() {
  try {
    stop(false);
  } catch (...) {
    // a destructor must not throw; the error was already reported to await_termination
  }
}

StreamNode::Ptr StreamingContext::add_node(StreamNode::Ptr node) {
  SLUICE_EXPECTS(state_.load() == State::Initialized,
                 "cannot add '" + node->name() + "' to a streaming context that was already started");
  nodes_.push_back(node);
  return node;
}

void StreamingContext::add_output(StreamNode::Ptr node) {
  add_node(node);
  outputs_.push_back(std::move(node));
}

TableStream StreamingContext::add_source(std::unique_ptr<Source> source) {
  SLUICE_EXPECTS(source != nullptr, "add_source: source is null");
  return TableStream(this, add_node(std::make_shared<SourceNode>(std::move(source), options_.batch_interval)));
}

DStream<std::string> StreamingContext::socket_text_stream(std::string host, uint16_t port, SourceOptions options) {
  return DStream<std::string>(add_source(make_socket_source(std::move(host), port, options)).rename({"value"}));
}

DStream<std::string> StreamingContext::text_file_stream(std::string directory, SourceOptions options) {
  return DStream<std::string>(add_source(make_text_file_source(std::move(directory), options)).rename({"value"}));
}

TableStream StreamingContext::generator(GeneratorOptions generator, SourceOptions options) {
  return add_source(make_generator_source(generator, options));
}

void StreamingContext::add_listener(std::shared_ptr<StreamingListener> listener) {
  std::lock_guard lock(mutex_);
  listeners_.push_back(std::move(listener));
}

MetricsSummary StreamingContext::summary() const {
  std::lock_guard lock(mutex_);
  return summary_;
}

void StreamingContext::start() {
  SLUICE_EXPECTS(state_.load() == State::Initialized, "a streaming context can be started only once");
  SLUICE_EXPECTS(!outputs_.empty(), "no output operations registered: add print(), foreach_batch() or a sink before start()");

  // Only nodes that some output depends on are stepped (Spark runs only what outputs need).
  std::unordered_set<StreamNode*> needed;
  std::vector<StreamNode*> stack;
  for (const auto& o : outputs_) stack.push_back(o.get());
  while (!stack.empty()) {
    StreamNode* n = stack.back();
    stack.pop_back();
    if (!needed.insert(n).second) continue;
    for (const auto& p : n->parents()) stack.push_back(p.get());
  }
  for (const auto& n : nodes_) {
    if (!needed.count(n.get())) continue;
    active_nodes_.push_back(n.get());
    if (auto* s = dynamic_cast<SourceNode*>(n.get())) sources_.push_back(s);
  }

  const int64_t interval = options_.batch_interval.count();
  const Time now = clock_->now();
  acknowledgements_.clear();
  const Time start_time{(now.ms / interval + 1) * interval};
  zero_time_ = start_time - options_.batch_interval;
  last_processed_ = zero_time_;
  for (SourceNode* s : sources_) {
    SourceAcknowledgement ack{s, {}, zero_time_};
    for (const auto& o : outputs_)
      if (o->last_output_including(*s, start_time, zero_time_)) ack.outputs.push_back(o.get());
    acknowledgements_.push_back(std::move(ack));
  }
  clock_->reset();
  try {
    for (StreamNode* n : active_nodes_) n->start(zero_time_, options_.batch_interval);
  } catch (...) {
    for (StreamNode* n : active_nodes_) n->stop();
    throw;
  }
  logging::debug("streaming context started: first batch at " + std::to_string(start_time.ms) + " ms, backend " +
             std::string(backend_->name()));
  state_ = State::Running;
  cutter_ = std::thread([this] { cut_batches(); });
  processor_ = std::thread([this] { process_batches(); });
}

void StreamingContext::cut_batches() {
  Time next = zero_time_ + options_.batch_interval;
  auto cut = [&](Time t) {
    // The backend may start copying the batch to its device now, while the batch before
    // is processed. That is an optimisation: a failure is logged, not fatal.
    const auto prefetch = [&](const Table& batch) {
      try {
        backend_->prefetch(t, batch);
      } catch (const std::exception& e) {
        logging::warn("batch " + std::to_string(t.ms) + " ms: prefetch to the device failed: " + e.what());
      }
    };
    for (SourceNode* s : sources_) s->cut(t, prefetch);
    std::lock_guard lock(mutex_);
    pending_.push_back(t);
    changed_.notify_all();
  };
  try {
    while (true) {
      {
        // Bounded: when processing falls behind, stop cutting and let the sources' queues
        // apply backpressure instead of holding ever more batches in memory.
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return pending_.size() < options_.max_pending_batches || cutting_done_ || abort_; });
        if (cutting_done_ || abort_) break;
      }
      if (!clock_->wait_until(next)) break;  // interrupted by stop()
      cut(next);
      next = next + options_.batch_interval;
      if (options_.stop_when_sources_finished &&
          std::all_of(sources_.begin(), sources_.end(), [](SourceNode* s) { return s->source().finished(); }))
        break;
    }
    bool graceful;
    {
      std::lock_guard lock(mutex_);
      graceful = !abort_;
    }
    for (SourceNode* s : sources_) s->source().stop();
    // A graceful stop delivers what the receivers already hold, in further batches.
    while (graceful) {
      bool pending = false;
      for (SourceNode* s : sources_) pending = pending || s->source().has_pending();
      if (!pending) break;
      {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return pending_.size() < options_.max_pending_batches || abort_; });
        if (abort_) break;
      }
      cut(next);
      next = next + options_.batch_interval;
    }
  } catch (...) {
    finish(std::current_exception());
  }
  std::lock_guard lock(mutex_);
  cutting_done_ = true;
  changed_.notify_all();
}

void StreamingContext::process_batches() {
  while (true) {
    Time t;
    std::chrono::steady_clock::time_point dequeued;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return !pending_.empty() || cutting_done_ || abort_; });
      if (abort_ || pending_.empty()) break;
      t = pending_.front();
      pending_.pop_front();
      changed_.notify_all();
    }
    const Time now = clock_->now();
    const Duration scheduling_delay = std::max(Duration{0}, now - t);
    try {
      run_batch(t, scheduling_delay);
    } catch (const std::exception& e) {
      finish(std::make_exception_ptr(Error("batch " + std::to_string(t.ms) + " ms failed: " + e.what())));
      break;
    } catch (...) {  // user code may throw anything; escaping the thread would terminate the process
      finish(std::make_exception_ptr(Error("batch " + std::to_string(t.ms) + " ms failed: unknown exception")));
      break;
    }
  }
  std::lock_guard lock(mutex_);
  processor_exited_ = true;
  changed_.notify_all();
}

void StreamingContext::run_batch(Time t, Duration scheduling_delay) {
  BatchInfo info;
  info.batch_time = t;
  info.scheduling_delay = scheduling_delay;
  std::vector<std::shared_ptr<StreamingListener>> listeners;
  {
    std::lock_guard lock(mutex_);
    listeners = listeners_;
  }
  for (auto& l : listeners) l->on_batch_started(info);

  const auto started = std::chrono::steady_clock::now();
  // Source batches before this one are gone (processed, or dropped when cut late).
  backend_->retire_prefetched(t - Duration{1});
  StepContext ctx{t, zero_time_, options_.batch_interval, backend_.get(), dead_letters_.get()};
  for (StreamNode* n : active_nodes_) {
    try {
      n->set_output(n->compute(ctx));
    } catch (const std::exception& e) {
      throw Error("operator '" + n->name() + "': " + e.what());
    } catch (...) {
      throw Error("operator '" + n->name() + "': unknown exception (not a std::exception)");
    }
  }
  for (StreamNode* n : active_nodes_) n->set_output(std::nullopt);  // batches do not outlive their step
  backend_->retire_prefetched(t);
  info.processing_time = std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - started);
  info.total_delay = info.scheduling_delay + info.processing_time;
  info.records_in = ctx.records_in;
  info.malformed_records = ctx.malformed;
  info.dropped_records = ctx.dropped;
  if (ctx.malformed) logging::warn("batch " + std::to_string(t.ms) + " ms: " + std::to_string(ctx.malformed) + " malformed records");

  {
    std::lock_guard lock(mutex_);
    summary_.batches++;
    summary_.records_in += info.records_in;
    summary_.malformed_records += info.malformed_records;
    summary_.dropped_records += info.dropped_records;
    summary_.total_processing_time += info.processing_time;
    summary_.max_processing_time = std::max(summary_.max_processing_time, info.processing_time);
    summary_.max_scheduling_delay = std::max(summary_.max_scheduling_delay, info.scheduling_delay);
    last_processed_ = t;
    changed_.notify_all();
  }
  acknowledge_sources(t);
  for (auto& l : listeners) l->on_batch_completed(info);
}

void StreamingContext::acknowledge_sources(Time completed) {
  // A source batch is acknowledged once every output that can include its records (the
  // last window holding them) has run: at-least-once for sources that commit on it.
  for (auto& ack : acknowledgements_) {
    const Time through = complete_through(ack.outputs, *ack.source, ack.acknowledged, completed,
                                          options_.batch_interval, zero_time_);
    if (through > ack.acknowledged) {
      ack.acknowledged = through;
      ack.source->source().commit_through(through);
    }
  }
}

void StreamingContext::finish(std::exception_ptr error) {
  std::lock_guard lock(mutex_);
  if (error && !error_) {
    error_ = error;
    abort_ = true;
    clock_->interrupt();
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      logging::error(e.what());
    }
  }
  changed_.notify_all();
}

void StreamingContext::advance_batches(size_t n) {
  auto* manual = dynamic_cast<ManualClock*>(clock_.get());
  SLUICE_EXPECTS(manual != nullptr, "advance_batches needs a context built with a ManualClock");
  SLUICE_EXPECTS(state_.load() == State::Running, "advance_batches: the context is not running");
  manual->advance(options_.batch_interval * static_cast<int64_t>(n));
  const int64_t interval = options_.batch_interval.count();
  const Time target{zero_time_.ms + (manual->now().ms - zero_time_.ms) / interval * interval};
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return last_processed_ >= target || error_ || processor_exited_; });
  if (error_) std::rethrow_exception(error_);
}

bool StreamingContext::await_termination(std::optional<Duration> timeout) {
  std::unique_lock lock(mutex_);
  auto done = [&] { return stopped_ || processor_exited_ || error_ != nullptr; };
  if (timeout) {
    if (!changed_.wait_for(lock, *timeout, done)) return false;
  } else {
    changed_.wait(lock, done);
  }
  if (error_) std::rethrow_exception(error_);
  if (!stopped_) {
    lock.unlock();
    stop(false);
  }
  return true;
}

void StreamingContext::stop(bool graceful) {
  State expected = State::Running;
  if (!state_.compare_exchange_strong(expected, State::Stopped)) {
    if (expected == State::Initialized) {
      // Never started: nothing to join, but await_termination() must see the stop.
      state_ = State::Stopped;
      std::lock_guard lock(mutex_);
      stopped_ = true;
      changed_.notify_all();
    }
    return;
  }
  {
    std::lock_guard lock(mutex_);
    if (!graceful) abort_ = true;
    changed_.notify_all();
  }
  clock_->interrupt();
  if (cutter_.joinable()) cutter_.join();
  if (processor_.joinable()) processor_.join();
  for (StreamNode* n : active_nodes_) n->stop();
  MetricsSummary summary;
  std::vector<std::shared_ptr<StreamingListener>> listeners;
  {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    summary = summary_;
    listeners = listeners_;
    changed_.notify_all();
  }
  logging::info("stopped: " + summary.to_string());
  for (auto& l : listeners) l->on_stream_stopped(summary);
}

}  // namespace sluice
