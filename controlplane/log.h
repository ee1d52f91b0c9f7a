// Control-plane logging: one line per event on stderr, level first, so journald and
// `grep ^ERROR` both work without a logging library.
//   INFO controlplane: pushed generation 3 to dataplane (2 vips, 8 backends)
#pragma once

#include <string_view>

namespace rondo::cp {

enum class LogLevel { kInfo, kWarn, kError };

/// Write one line "<LEVEL> controlplane: <message>" to stderr.
void log(LogLevel level, std::string_view message);

inline void log_info(std::string_view message) { log(LogLevel::kInfo, message); }
inline void log_warn(std::string_view message) { log(LogLevel::kWarn, message); }
inline void log_error(std::string_view message) { log(LogLevel::kError, message); }

}  // namespace rondo::cp
