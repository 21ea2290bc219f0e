#include <algorithm>
#include <chrono>
#include <thread>

#include "sluice/source.hpp"

namespace sluice {
namespace {
int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

RateLimiter::RateLimiter(double records_per_second)
    : rate_(records_per_second), tokens_(records_per_second), last_ns_(steady_ns()) {
  SLUICE_EXPECTS(records_per_second >= 0, "max_rate must not be negative, got " + std::to_string(records_per_second));
}

size_t RateLimiter::available(size_t wanted) {
  if (rate_ <= 0) return wanted;
  const int64_t now = steady_ns();
  // The bucket holds at most one second of records, so an idle source cannot burst past the rate.
  tokens_ = std::min(rate_, tokens_ + rate_ * static_cast<double>(now - last_ns_) * 1e-9);
  last_ns_ = now;
  const size_t n = std::min(wanted, static_cast<size_t>(std::max(0.0, tokens_)));
  tokens_ -= static_cast<double>(n);
  return n;
}

void RateLimiter::acquire(size_t n, const std::atomic<bool>* cancelled) {
  if (rate_ <= 0) return;
  while (n > 0) {
    n -= available(n);
    if (n == 0 || (cancelled && cancelled->load())) return;
    const double wait_s = std::min(0.05, static_cast<double>(n) / rate_);
    std::this_thread::sleep_for(std::chrono::microseconds(std::max<int64_t>(100, static_cast<int64_t>(wait_s * 1e6))));
  }
}

IngestQueue::IngestQueue(const SourceOptions& options) : options_(options), limiter_(options.max_rate) {
  SLUICE_EXPECTS(options.queue_capacity > 0, "queue_capacity must be at least 1");
}

bool IngestQueue::push(std::string record) {
  limiter_.acquire(1, &closed_flag_);
  std::unique_lock lock(mutex_);
  if (closed_) return false;
  if (records_.size() >= options_.queue_capacity) {
    if (options_.overflow == OverflowPolicy::Drop) {
      dropped_.fetch_add(1);
      return false;
    }
    not_full_.wait(lock, [&] { return closed_ || records_.size() < options_.queue_capacity; });
    if (closed_) return false;
  }
  records_.push_back(std::move(record));
  return true;
}

size_t IngestQueue::drain(std::vector<std::string>& out) {
  std::lock_guard lock(mutex_);
  const size_t n = records_.size();
  out.insert(out.end(), std::make_move_iterator(records_.begin()), std::make_move_iterator(records_.end()));
  records_.clear();
  not_full_.notify_all();
  return n;
}

void IngestQueue::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  closed_flag_ = true;
  not_full_.notify_all();
}

void IngestQueue::reopen() {
  std::lock_guard lock(mutex_);
  closed_ = false;
  closed_flag_ = false;
}

size_t IngestQueue::size() const {
  std::lock_guard lock(mutex_);
  return records_.size();
}

Table lines_table(const std::vector<std::string>& lines) {
  Column c(TypeId::String);
  size_t chars = 0;
  for (const auto& l : lines) chars += l.size();
  c.reserve(lines.size(), chars);
  for (const auto& l : lines) c.append_string(l);
  std::vector<Column> cols;
  cols.push_back(std::move(c));
  return Table(Schema{{"line", TypeId::String}}, std::move(cols));
}

}  // namespace sluice
