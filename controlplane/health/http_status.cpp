#include "controlplane/health/http_status.h"

namespace rondo::cp {

int parse_status_line(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() < 12 || line.substr(0, 5) != "HTTP/") return -1;
  // HTTP-version is "HTTP/" DIGIT "." DIGIT, then one space and a 3-digit status.
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!digit(line[5]) || line[6] != '.' || !digit(line[7]) || line[8] != ' ') return -1;
  if (!digit(line[9]) || !digit(line[10]) || !digit(line[11])) return -1;
  if (line.size() > 12 && line[12] != ' ') return -1;
  return (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
}

}  // namespace rondo::cp
