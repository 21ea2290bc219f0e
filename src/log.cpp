#include "sluice/log.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

namespace sluice::logging {
namespace {

Level level_from_env() {
  const char* env = std::getenv("SLUICE_LOG");
  if (!env) return Level::Info;
  const std::string v(env);
  if (v == "debug") return Level::Debug;
  if (v == "warn") return Level::Warn;
  if (v == "error") return Level::Error;
  if (v == "off") return Level::Off;
  return Level::Info;
}

std::atomic<Level>& current() {
  static std::atomic<Level> level{level_from_env()};
  return level;
}

const char* label(Level l) {
  switch (l) {
    case Level::Debug: return "debug";
    case Level::Info: return "info";
    case Level::Warn: return "warn";
    case Level::Error: return "error";
    default: return "";
  }
}

}  // namespace

void set_level(Level level) { current().store(level); }
Level level() { return current().load(); }

void write(Level l, std::string_view message) {
  if (l < current().load() || l == Level::Off) return;
  static std::mutex mutex;  // whole lines, never interleaved
  std::lock_guard lock(mutex);
  std::fprintf(stderr, "sluice [%s] %.*s\n", label(l), static_cast<int>(message.size()), message.data());
}

}  // namespace sluice::logging
