#include <cstdio>

#include "sluice/metrics.hpp"

namespace sluice {

std::string MetricsSummary::to_string() const {
  const double avg_ms = batches ? static_cast<double>(total_processing_time.count()) / static_cast<double>(batches) : 0.0;
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "%zu batches, %zu records in (%zu malformed, %zu dropped), processing avg %.1f ms max %lld ms, "
                "max scheduling delay %lld ms",
                batches, records_in, malformed_records, dropped_records, avg_ms,
                static_cast<long long>(max_processing_time.count()), static_cast<long long>(max_scheduling_delay.count()));
  return buf;
}

}  // namespace sluice
