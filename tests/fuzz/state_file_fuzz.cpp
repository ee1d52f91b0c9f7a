// libFuzzer target: the control plane's state file (controlplane/state/state_file.h), read
// at every start, from a disk anyone with the daemon's rights could have written.
//
// Besides "no crash, no memory error, no uncaught exception": a refusal says why, and a
// state that decodes encodes to text that decodes to an equal state.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "controlplane/state/state_file.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rondo::cp;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto decoded = decode_state_file(text);
  if (const auto* err = std::get_if<std::string>(&decoded)) {
    FUZZ_CHECK(!err->empty());
    return 0;
  }
  const auto& state = std::get<PersistedState>(decoded);
  const std::string encoded = encode_state_file(state);
  const auto again = decode_state_file(encoded);
  if (const auto* err = std::get_if<std::string>(&again)) {
    std::fprintf(stderr, "re-encoded state does not decode: %s\n%s", err->c_str(), encoded.c_str());
    std::abort();
  }
  FUZZ_CHECK(std::get<PersistedState>(again) == state);
  return 0;
}
