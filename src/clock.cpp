#include "sluice/clock.hpp"

namespace sluice {

Time SystemClock::now() const {
  using namespace std::chrono;
  return Time{duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count()};
}

bool SystemClock::wait_until(Time t) {
  std::unique_lock lock(mutex_);
  while (!interrupted_) {
    const Time n = now();
    if (n >= t) return true;
    cv_.wait_for(lock, t - n);
  }
  return false;
}

void SystemClock::interrupt() {
  std::lock_guard lock(mutex_);
  interrupted_ = true;
  cv_.notify_all();
}

void SystemClock::reset() {
  std::lock_guard lock(mutex_);
  interrupted_ = false;
}

Time ManualClock::now() const {
  std::lock_guard lock(mutex_);
  return now_;
}

bool ManualClock::wait_until(Time t) {
  std::unique_lock lock(mutex_);
  if (auto_advance_ && !interrupted_ && now_ < t) now_ = t;
  cv_.wait(lock, [&] { return interrupted_ || now_ >= t; });
  return !interrupted_;
}

void ManualClock::interrupt() {
  std::lock_guard lock(mutex_);
  interrupted_ = true;
  cv_.notify_all();
}

void ManualClock::reset() {
  std::lock_guard lock(mutex_);
  interrupted_ = false;
}

void ManualClock::advance(Duration d) {
  std::lock_guard lock(mutex_);
  now_ = now_ + d;
  cv_.notify_all();
}

void ManualClock::set(Time t) {
  std::lock_guard lock(mutex_);
  if (t > now_) now_ = t;
  cv_.notify_all();
}

}  // namespace sluice
