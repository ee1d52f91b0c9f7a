// Limits on JSON read from outside the process (API lines, the state file).
//
// nlohmann::json parses iteratively, but dump(), comparison and copies recurse once per
// nesting level: a 1 MiB line of "[[[[..." would overflow the stack. Inputs are checked
// with a plain loop before they are parsed, and nothing hostile is ever dumped back.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace rondo::cp {

/// Deeper than any request or state file rondo writes (the state file nests 5 levels).
inline constexpr size_t kMaxJsonDepth = 32;

/// "" if `text` nests arrays and objects at most `max_depth` deep; otherwise why not.
/// Counts brackets outside strings only; does not otherwise check the syntax.
std::string check_json_depth(std::string_view text, size_t max_depth = kMaxJsonDepth);

/// What a value is, for an error message, without printing it: "a list", "an object",
/// "\"80\"" (short strings, escaped), "true", "-3", "1.5", "null". Numbers and booleans are printed (bounded).
std::string describe_json(const nlohmann::json& v);

}  // namespace rondo::cp
