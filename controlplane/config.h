// Loading rondo's YAML config file into the desired dataplane state (api::State).
//
// The format is documented, option by option, in deploy/rondo.yaml. Loading is all or
// nothing: any problem yields the list of errors and no State, so a bad file can never be
// partially applied.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "dataplane/api/ctl.h"

namespace rondo::cp {

/// One problem in a config file, pointing at its line and field.
struct ConfigError {
  std::string file;
  int line = 0;        // 1-based; 0 when the problem has no single line (unreadable file)
  std::string field;   // path in the document, e.g. "vips[0].backends[2].port"; may be empty
  std::string message;

  /// "file:line: field: message", the form editors and CI logs can jump to.
  std::string to_string() const;
  bool operator==(const ConfigError&) const = default;
};

/// Either the state described by the file (generation 0: the Controller numbers
/// generations) or every error found, ordered by line.
using ConfigResult = std::variant<api::State, std::vector<ConfigError>>;

/// Parse config text. `name` stands for the file in error messages.
ConfigResult parse_config(std::string_view text, std::string_view name);
/// Read and parse the config file at `path` (errors name the file as `path`).
ConfigResult load_config(const std::string& path);

/// Total number of backends over all vips.
size_t count_backends(const api::State& s);

}  // namespace rondo::cp
