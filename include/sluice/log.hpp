#pragma once
/// @file log.hpp
/// @brief Minimal leveled logging to stderr ("sluice [warn] socket 127.0.0.1:9999: ...").

#include <string_view>

// Not "log": with `using namespace sluice`, a namespace log would make the C math log()
// ambiguous (nvcc's math headers call it unqualified).
namespace sluice::logging {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3, Off = 4 };

/// Messages below @p level are not printed (default Info; SLUICE_LOG=debug|info|warn|error|off).
void set_level(Level level);
Level level();
void write(Level level, std::string_view message);

inline void debug(std::string_view m) { write(Level::Debug, m); }
inline void info(std::string_view m) { write(Level::Info, m); }
inline void warn(std::string_view m) { write(Level::Warn, m); }
inline void error(std::string_view m) { write(Level::Error, m); }

}  // namespace sluice::logging
