// libFuzzer target: the YAML config file parser (controlplane/config/config.h), as
// `rondo-controlplane --check` and `rondoctl reload` run it on whatever the file holds.
//
// Besides "no crash, no memory error, no uncaught exception": a refusal lists at least one
// error, each naming the file.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "controlplane/config/config.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rondo::cp;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const ModelResult r = parse_config_model(text, "fuzz.yaml");
  if (const auto* errors = std::get_if<std::vector<ConfigError>>(&r)) {
    FUZZ_CHECK(!errors->empty());
    for (const ConfigError& e : *errors) {
      FUZZ_CHECK(e.file == "fuzz.yaml");
      const std::string line = e.to_string();
      if (line.find('\n') != std::string::npos) {
        std::fprintf(stderr, "error message of more than one line: [%s]\n", line.c_str());
        std::abort();
      }
    }
  }
  return 0;
}
