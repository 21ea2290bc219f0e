#pragma once
/// @file metrics.hpp
/// @brief Per-batch metrics and listeners, like Spark's StreamingListener.

#include <cstddef>
#include <string>

#include "sluice/types.hpp"

namespace sluice {

/// @brief What happened to one batch. Delays follow Spark's definitions:
/// scheduling delay = processing start - batch time; total = scheduling + processing.
struct BatchInfo {
  Time batch_time;
  size_t records_in = 0;          ///< records all sources delivered for this batch
  size_t malformed_records = 0;   ///< records that failed to parse (dead-lettered when configured)
  size_t dropped_records = 0;     ///< records sources dropped since the last batch (overflow policy drop)
  Duration scheduling_delay{0};
  Duration processing_time{0};
  Duration total_delay{0};
};

/// @brief Totals over a run, reported at stop.
struct MetricsSummary {
  size_t batches = 0;
  size_t records_in = 0;
  size_t malformed_records = 0;
  size_t dropped_records = 0;
  Duration total_processing_time{0};
  Duration max_processing_time{0};
  Duration max_scheduling_delay{0};
  /// "12 batches, 3400 records in (0 malformed, 0 dropped), processing avg 1.2 ms max 3 ms, ..."
  std::string to_string() const;
};

/// @brief Receives batch events on the scheduler's thread; keep callbacks short.
class StreamingListener {
 public:
  virtual ~StreamingListener() = default;
  virtual void on_batch_started(const BatchInfo&) {}
  virtual void on_batch_completed(const BatchInfo&) {}
  virtual void on_stream_stopped(const MetricsSummary&) {}
};

}  // namespace sluice
