// libFuzzer target: the dataplane control protocol's decoders (dataplane/api/ctl.h) on
// arbitrary bytes. They face whatever is written to the control socket.
//
// The first byte picks what the rest is:
//   0: a frame: MsgHeader (check_header), then its payload decoded as the header's type says,
//      as the two ends do after recv_msg;
//   1: a State payload (decode_state, then check_state and validate_state);
//   2: a DataplaneInfo payload;  3: an Ack payload;  4: a Stats payload;
//   5: an InspectRequest payload;  6: an InspectReply payload.
// Besides "no crash, no out-of-bounds access, no huge allocation", it checks that whatever
// decodes encodes back to the very same bytes, and that those bytes decode to the same value
// (every field is read, booleans are 0 or 1, and nothing may trail).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/api/ctl.h"
#include "dataplane/api/validate.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace rondo::api;

// Decode `p` with `decode`; if it decodes, check the round trip through `encode`.
template <typename T, typename Decode, typename Encode>
std::optional<T> round_trip(std::span<const uint8_t> p, Decode decode, Encode encode) {
  std::string err;
  std::optional<T> v = decode(p, &err);
  if (!v) {
    FUZZ_CHECK(!err.empty());  // a refusal always says why
    return v;
  }
  const std::vector<uint8_t> bytes = encode(*v);
  FUZZ_CHECK(bytes.size() == p.size());
  FUZZ_CHECK(bytes.empty() || std::memcmp(bytes.data(), p.data(), p.size()) == 0);
  const std::optional<T> again = decode(bytes, &err);
  FUZZ_CHECK(again && *again == *v);
  return v;
}

void state(std::span<const uint8_t> p) {
  const auto s = round_trip<State>(p, decode_state, encode_state);
  if (!s) return;
  // The dataplane's checks before it applies a state: validate_state is the first problem.
  const std::vector<Problem> problems = check_state(*s);
  FUZZ_CHECK(validate_state(*s) == (problems.empty() ? "" : problems.front().to_string()));
}

void payload(MsgType type, std::span<const uint8_t> p) {
  switch (type) {
    case MsgType::kSetState: state(p); break;
    case MsgType::kHelloReply: round_trip<DataplaneInfo>(p, decode_info, encode_info); break;
    case MsgType::kSetStateReply:
    case MsgType::kError: round_trip<Ack>(p, decode_ack, encode_ack); break;
    case MsgType::kStatsReply: round_trip<Stats>(p, decode_stats, encode_stats); break;
    case MsgType::kInspect:
      round_trip<InspectRequest>(p, decode_inspect_request, encode_inspect_request);
      break;
    case MsgType::kInspectReply:
      round_trip<InspectReply>(p, decode_inspect_reply, encode_inspect_reply);
      break;
    case MsgType::kHello:
    case MsgType::kGetStats: break;  // no body
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::span<const uint8_t> rest(data + 1, size - 1);
  switch (data[0] % 7) {
    case 0: {
      MsgHeader h;
      if (rest.size() < sizeof h) return 0;
      std::memcpy(&h, rest.data(), sizeof h);
      if (!check_header(h).empty()) return 0;
      // A valid header: its type is known and its length bounded. The payload is what
      // follows, cut to the announced length (recv_msg would wait for the rest).
      const auto body = rest.subspan(sizeof h);
      payload(static_cast<MsgType>(h.type), body.first(std::min<size_t>(body.size(), h.length)));
      // frame() writes the header check_header accepts.
      const auto f = frame(static_cast<MsgType>(h.type), h.seq, body.first(0));
      MsgHeader h2;
      std::memcpy(&h2, f.data(), sizeof h2);
      FUZZ_CHECK(check_header(h2).empty() && h2.type == h.type && h2.seq == h.seq);
      break;
    }
    case 1: state(rest); break;
    case 2: round_trip<DataplaneInfo>(rest, decode_info, encode_info); break;
    case 3: round_trip<Ack>(rest, decode_ack, encode_ack); break;
    case 4: round_trip<Stats>(rest, decode_stats, encode_stats); break;
    case 5: round_trip<InspectRequest>(rest, decode_inspect_request, encode_inspect_request); break;
    case 6: round_trip<InspectReply>(rest, decode_inspect_reply, encode_inspect_reply); break;
  }
  return 0;
}
