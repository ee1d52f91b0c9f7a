// The status line of an HTTP health check's response, parsed on its own so that it can be
// unit-tested and fuzzed without a socket.
#pragma once

#include <string_view>

namespace rondo::cp {

/// Parse "HTTP/1.x NNN[ reason]" (RFC 9112 section 4), one line without its '\n' (a trailing
/// '\r' is allowed). Returns the 3-digit status code, or -1 if the line is not one.
int parse_status_line(std::string_view line);

}  // namespace rondo::cp
