// The control plane's local API: one JSON object per line in, one per line out.
//
// Request:  {"cmd": "backend.drain", "vip": "web", "address": "198.51.100.3", "port": 3001}
// Response: {"ok": true, "changes": ["~ backend web 198.51.100.3:3001 drained"],
//            "generation": 7, "applied": true}
//       or: {"ok": false, "code": "not_found", "error": "no vip named wbe"}
//
// Every request is checked field by field (types, ranges, unknown fields) before anything
// is done: the server never trusts the client, and a malformed request changes nothing.
// The commands and their fields are listed in docs/controlplane.md.
#pragma once

#include <string>
#include <string_view>

#include "controlplane/state/control_plane.h"

namespace rondo::cp {

/// Answer one request line (without its newline); the answer has no newline either.
/// `origin` names the caller in logs (e.g. "uid 0 pid 4242").
std::string handle_request(ControlPlane& cp, std::string_view line, const std::string& origin);

}  // namespace rondo::cp
