#include "controlplane/json_input.h"

namespace rondo::cp {

std::string check_json_depth(std::string_view text, size_t max_depth) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;  // the escaped character cannot end the string
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth)
        return "nested deeper than " + std::to_string(max_depth) + " levels";
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return {};
}

std::string describe_json(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::array: return "a list";
    case nlohmann::json::value_t::object: return "an object";
    case nlohmann::json::value_t::string: {
      // Short strings are shown (escaped by dump()); long ones only by their kind.
      const auto& str = v.get_ref<const std::string&>();
      return str.size() <= 32 ? v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                              : "a string of " + std::to_string(str.size()) + " bytes";
    }
    case nlohmann::json::value_t::null: return "null";
    case nlohmann::json::value_t::boolean:
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float: return v.dump();
    default: return "a value of another type";
  }
}

}  // namespace rondo::cp
