#pragma once
/// @file source.hpp
/// @brief Sources deliver one table per batch time. Receiver sources (sockets) run a thread
/// that feeds a bounded IngestQueue; pull sources (files, queues, generator, replay) build
/// the batch when asked.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sluice/column.hpp"
#include "sluice/types.hpp"

namespace sluice {

/// @brief What a receiver does when its ingest queue is full.
enum class OverflowPolicy {
  Block,  ///< the receiving thread waits (backpressure reaches the peer through TCP)
  Drop,   ///< the record is dropped and counted
};

/// @brief Options every source accepts.
struct SourceOptions {
  /// Records held between batches before the overflow policy applies.
  size_t queue_capacity = 1 << 20;
  OverflowPolicy overflow = OverflowPolicy::Block;
  /// Records per second the source may deliver; 0 means no limit.
  double max_rate = 0;
};

/// @brief Counters a source keeps over its life.
struct SourceCounters {
  size_t records = 0;    ///< records delivered in batches
  size_t dropped = 0;    ///< records dropped by the overflow policy
  size_t errors = 0;     ///< connection or read errors (logged)
  size_t buffered = 0;   ///< records received and held for later batches (Kafka, socket; 0 elsewhere)
};

/// @brief A record a source received but cannot deliver (too large, undecodable); the
/// engine counts it as malformed and sends it to the dead-letter sink.
struct RejectedRecord {
  std::string record;
  std::string reason;
};

/// @brief A source of batches. next_batch() is called once per batch time, in order, on
/// the scheduler's thread; start() and stop() bracket the run.
class Source {
 public:
  virtual ~Source() = default;
  /// A name for logs and errors, e.g. "socket 127.0.0.1:9999".
  virtual std::string name() const = 0;
  virtual const Schema& schema() const = 0;
  /// Begins receiving (starts threads). The first batch time will be
  /// @p zero_time + @p batch_interval. Errors that make the source useless throw.
  virtual void start(Time zero_time, Duration batch_interval) {
    (void)zero_time;
    (void)batch_interval;
  }
  /// Stops receiving; what was already received is still delivered by next_batch().
  virtual void stop() {}
  /// The records of the batch ending at @p batch_time.
  virtual Table next_batch(Time batch_time) = 0;
  /// True while records were received but not yet delivered (a graceful stop cuts more
  /// batches until no source has any).
  virtual bool has_pending() const { return false; }
  /// True once the source will never deliver another record (finite sources).
  virtual bool finished() const { return false; }
  virtual SourceCounters counters() const { return {}; }
  /// Records rejected since the last call (taken on the batch cutter's thread, right after
  /// next_batch(), and reported with that batch).
  virtual std::vector<RejectedRecord> take_rejected() { return {}; }
  /// Every output that depends on the records of the batches up to @p batch_time has been
  /// produced: a source with acknowledgements (Kafka offsets) may commit them now. Called
  /// on the processing thread, with increasing times, only after successful batches.
  virtual void commit_through(Time batch_time) { (void)batch_time; }
  /// Called once after the last batch was processed and committed: release connections.
  virtual void close() {}
};

/// @brief Token bucket for max_rate: acquire(n) sleeps until n more records may pass.
class RateLimiter {
 public:
  /// @p records_per_second 0 disables the limit.
  explicit RateLimiter(double records_per_second = 0);
  /// Blocks until @p n records fit under the rate, or until @p cancelled becomes true.
  void acquire(size_t n, const std::atomic<bool>* cancelled = nullptr);
  /// How many of @p wanted records may pass now without waiting (does not block).
  size_t available(size_t wanted);
  double rate() const { return rate_; }

 private:
  double rate_;
  double tokens_;
  int64_t last_ns_;
};

/// @brief Bounded queue of text records between a receiver thread and the batch cutter.
/// push() applies the overflow policy and the rate limit; drain() takes everything queued.
class IngestQueue {
 public:
  explicit IngestQueue(const SourceOptions& options);
  /// Queues @p record. Blocks while full (Block) or drops it (Drop); returns false when
  /// the record was dropped or the queue was closed.
  bool push(std::string record);
  /// Moves every queued record into @p out (appended) and wakes blocked producers.
  size_t drain(std::vector<std::string>& out);
  /// Wakes and releases blocked producers (a push already under way keeps its record);
  /// pushes that begin later are refused.
  void close();
  void reopen();
  size_t size() const;
  size_t dropped() const { return dropped_.load(); }

 private:
  SourceOptions options_;
  RateLimiter limiter_;
  mutable std::mutex mutex_;
  std::condition_variable not_full_;
  std::deque<std::string> records_;
  bool closed_ = false;
  std::atomic<bool> closed_flag_{false};
  std::atomic<size_t> dropped_{0};
};

/// @brief A table with one string column "line" holding @p lines.
Table lines_table(const std::vector<std::string>& lines);

/// @brief Reads lines from a TCP server, reconnecting with exponential backoff (100 ms up
/// to 5 s) after a refused connection or a disconnect. Schema: {line: string}.
std::unique_ptr<Source> make_socket_source(std::string host, uint16_t port, SourceOptions options = {});

/// @brief Each batch holds the lines of the files that appeared in @p directory since the
/// last batch; every file is read exactly once. Names starting with '.' or '_', or ending in
/// ".tmp" or "._COPYING_", are skipped as not yet complete: move files in atomically.
/// Schema: {line: string}. A missing directory is logged and retried every batch.
std::unique_ptr<Source> make_text_file_source(std::string directory, SourceOptions options = {});

/// @brief In-memory batches: one per batch time when @p one_at_a_time (Spark's default),
/// otherwise all at the first batch; after the last, empty batches. finished() after the last.
std::unique_ptr<Source> make_queue_source(Schema schema, std::vector<Table> batches, bool one_at_a_time = true);

/// @brief What the synthetic generator produces.
struct GeneratorOptions {
  enum class Kind {
    Words,  ///< {word: string}: words drawn from a fixed vocabulary with a Zipf-like skew
    Lines,  ///< {line: string}: lines of 1..12 such words
    Pairs,  ///< {key: int64, value: int64}: key uniform in [0, distinct_keys), value in [0, 100)
  };
  Kind kind = Kind::Words;
  /// Records per second of batch time (each batch holds rate * interval records).
  double rate = 1000;
  uint64_t seed = 42;
  int64_t distinct_keys = 1000;
  /// Stop after this many records (0: never); finished() then turns true.
  size_t limit = 0;
};

/// @brief Seeded synthetic records. Deterministic: the same seed and batch times give the
/// same batches. max_rate in @p options caps the rate further.
std::unique_ptr<Source> make_generator_source(GeneratorOptions generator, SourceOptions options = {});

}  // namespace sluice
