#include "controlplane/log.h"

#include <unistd.h>

#include <cerrno>
#include <string>

namespace rondo::cp {
namespace {

constexpr std::string_view kComponent = "controlplane";

std::string_view level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kWarn: return "WARN";
    case LogLevel::kError: return "ERROR";
  }
  return "INFO";
}

}  // namespace

void log(LogLevel level, std::string_view message) {
  std::string line;
  line.reserve(message.size() + 32);
  line.append(level_name(level)).append(" ").append(kComponent).append(": ");
  // Keep one event on one line even if a message embeds a newline (e.g. a peer's error text).
  for (char c : message) line.push_back(c == '\n' ? ' ' : c);
  line.push_back('\n');
  // A single write(2) per line so that lines from several threads never interleave.
  const char* p = line.data();
  size_t n = line.size();
  while (n > 0) {
    ssize_t w = ::write(STDERR_FILENO, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;  // stderr is gone; nothing better to do with a log line
    p += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace rondo::cp
