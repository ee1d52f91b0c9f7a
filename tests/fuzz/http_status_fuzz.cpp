// libFuzzer target: the status line of an HTTP health check's response
// (controlplane/health/http_status.h), which comes from any backend, or from whatever
// answers on its address.
//
// Besides "no out-of-bounds access": the result is -1 or a 3-digit status that the line
// spells out at offset 9.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "controlplane/health/http_status.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  const int status = rondo::cp::parse_status_line(line);
  if (status == -1) return 0;
  FUZZ_CHECK(status >= 0 && status <= 999);
  FUZZ_CHECK(line.size() >= 12 && line.substr(0, 5) == "HTTP/");
  FUZZ_CHECK(line[9] - '0' == status / 100 && line[10] - '0' == status / 10 % 10 &&
             line[11] - '0' == status % 10);
  return 0;
}
