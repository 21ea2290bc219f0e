#include <algorithm>
#include <chrono>
#include <thread>

#include "sluice/source.hpp"

namespace sluice {
namespace {

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// How long to wait before asking the bucket again for @p missing records: long enough not
/// to spin, short enough (at most 50 ms) that cancellation and close() are noticed promptly.
std::chrono::microseconds wait_slice(size_t missing, double rate) {
  const double seconds = std::min(0.05, static_cast<double>(missing) / rate);
  return std::chrono::microseconds(std::max<int64_t>(100, static_cast<int64_t>(seconds * 1e6)));
}

}  // namespace

RateLimiter::RateLimiter(double records_per_second)
    : rate_(records_per_second), tokens_(records_per_second), last_ns_(steady_ns()) {
  SLUICE_EXPECTS(records_per_second >= 0,
                 "max_rate must not be negative, got " + std::to_string(records_per_second) + " records/s");
}

size_t RateLimiter::available(size_t wanted) {
  if (rate_ <= 0) return wanted;
  const int64_t now = steady_ns();
  // The bucket holds one second of records (at least one record, so that rates below 1/s
  // still pass): an idle source cannot later burst past the rate.
  const double bucket = std::max(rate_, 1.0);
  tokens_ = std::min(bucket, tokens_ + rate_ * static_cast<double>(now - last_ns_) * 1e-9);
  last_ns_ = now;
  const size_t granted = std::min(wanted, static_cast<size_t>(std::max(0.0, tokens_)));
  tokens_ -= static_cast<double>(granted);
  return granted;
}

void RateLimiter::acquire(size_t n, const std::atomic<bool>* cancelled) {
  if (rate_ <= 0) return;
  while (n > 0) {
    n -= available(n);
    if (n == 0 || (cancelled && cancelled->load())) return;
    std::this_thread::sleep_for(wait_slice(n, rate_));
  }
}

IngestQueue::IngestQueue(const SourceOptions& options) : options_(options), limiter_(options.max_rate) {
  SLUICE_EXPECTS(options.queue_capacity > 0, "ingest queue: queue_capacity must be at least 1, got 0");
}

bool IngestQueue::push(std::string record) {
  std::unique_lock lock(mutex_);
  if (closed_) return false;
  // A push already under way when close() comes is released and its record kept: close()
  // only refuses pushes that begin after it, so a stopping receiver loses nothing it held.
  if (limiter_.rate() > 0) {
    // The limiter is used under mutex_ (it is not thread-safe); waiting on not_full_ rather
    // than sleeping lets close() wake the producer at once.
    while (!closed_ && limiter_.available(1) == 0) not_full_.wait_for(lock, wait_slice(1, limiter_.rate()));
  }
  if (!closed_ && records_.size() >= options_.queue_capacity) {
    if (options_.overflow == OverflowPolicy::Drop) {
      dropped_.fetch_add(1);
      return false;
    }
    not_full_.wait(lock, [&] { return closed_ || records_.size() < options_.queue_capacity; });
  }
  records_.push_back(std::move(record));
  return true;
}

size_t IngestQueue::drain(std::vector<std::string>& out) {
  std::lock_guard lock(mutex_);
  const size_t n = records_.size();
  out.reserve(out.size() + n);
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
  Column text(TypeId::String);
  size_t chars = 0;
  for (const auto& line : lines) chars += line.size();
  text.reserve(lines.size(), chars);
  for (const auto& line : lines) text.append_string(line);
  std::vector<Column> columns;
  columns.push_back(std::move(text));
  return Table(Schema{{"line", TypeId::String}}, std::move(columns));
}

}  // namespace sluice
