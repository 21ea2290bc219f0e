#pragma once
/// @file clock.hpp
/// @brief The batch clock: wall clock in production, a manual clock in tests and replay.

#include <condition_variable>
#include <mutex>

#include "sluice/types.hpp"

namespace sluice {

/// @brief Source of batch times. The scheduler waits on it for each batch boundary.
class Clock {
 public:
  virtual ~Clock() = default;
  /// Current time.
  virtual Time now() const = 0;
  /// Blocks until now() >= @p t or interrupt() was called; returns false when interrupted.
  virtual bool wait_until(Time t) = 0;
  /// Wakes every waiter (used by stop()). Later waits return false until reset().
  virtual void interrupt() = 0;
  virtual void reset() = 0;
};

/// @brief Milliseconds since the Unix epoch, from std::chrono::system_clock.
class SystemClock final : public Clock {
 public:
  Time now() const override;
  bool wait_until(Time t) override;
  void interrupt() override;
  void reset() override;

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool interrupted_ = false;
};

/// @brief A clock that moves only when told to (tests), or, with @p auto_advance, jumps to
/// whatever time is waited for, so that a replay runs as fast as batches can be processed.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Time start = Time{0}, bool auto_advance = false)
      : now_(start), auto_advance_(auto_advance) {}
  Time now() const override;
  bool wait_until(Time t) override;
  void interrupt() override;
  void reset() override;
  /// Moves the clock forward by @p d and wakes waiters.
  void advance(Duration d);
  /// Sets the clock to @p t (never backwards).
  void set(Time t);

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  Time now_;
  bool auto_advance_;
  bool interrupted_ = false;
};

}  // namespace sluice
