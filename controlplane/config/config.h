// Loading rondo's YAML config file into the desired state.
//
// The format is documented, option by option, in deploy/rondo.yaml. Loading is all or
// nothing: any problem yields the list of errors and no state, so a bad file can never be
// partially applied.
//
// The file names vips, interfaces and lists backends; it carries no ids. The daemon's
// StateStore gives ids by key (vip name, backend address:port, interface name), so
// reordering the file renumbers nothing.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "controlplane/state/model.h"
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

/// Either the desired state described by the file (vip and backend ids all 0; interfaces
/// numbered in file order, the routes and neighbours naming one holding that id; health
/// unknown, nothing drained) or every error found, ordered by line.
using ModelResult = std::variant<DesiredState, std::vector<ConfigError>>;

/// Parse config text. `name` stands for the file in error messages.
ModelResult parse_config_model(std::string_view text, std::string_view name);
/// Read and parse the config file at `path` (errors name the file as `path`). If `digest`
/// is given and the file could be read, it receives config_digest() of its bytes.
ModelResult load_config_model(const std::string& path, std::string* digest = nullptr);

/// A short, stable fingerprint of a config file's bytes ("fnv1a64:<16 hex digits>"); the
/// state file records the one last applied, to notice a file edited while stopped.
std::string config_digest(std::string_view text);

/// Read a whole file; on failure the error names the file and the reason (no line).
std::optional<ConfigError> read_config_file(const std::string& path, std::string* text);

/// The file as the dataplane would get it on a first start (generation 0; ids in file
/// order, as assign_fresh_ids gives them). For --check and tests.
using ConfigResult = std::variant<api::State, std::vector<ConfigError>>;
ConfigResult parse_config(std::string_view text, std::string_view name);
ConfigResult load_config(const std::string& path);

/// Total number of backends over all vips.
size_t count_backends(const api::State& s);

}  // namespace rondo::cp
