#include "io/config_json.h"

#include <set>
#include <vector>

#include "base/error.h"
#include "io/read_file.h"

namespace pf {

namespace {
// Thrown from the parser callback; caught in parse_json.
struct JsonProblem {
  std::string what;
};
}  // namespace

nlohmann::json parse_json(const char* begin, const char* end, const std::string& what,
                          int max_depth) {
  using json = nlohmann::json;
  // One entry per open object or array: the keys seen so far (arrays have none).
  std::vector<std::set<std::string>> open;
  auto cb = [&](int, json::parse_event_t ev, json& parsed) {
    switch (ev) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (static_cast<int>(open.size()) >= max_depth)
          throw JsonProblem{"nested deeper than " + std::to_string(max_depth) + " levels"};
        open.emplace_back();
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!open.empty()) open.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open.empty() && !open.back().insert(parsed.get<std::string>()).second)
          throw JsonProblem{"duplicate key '" + parsed.get<std::string>() + "'"};
        break;
      case json::parse_event_t::value:
        break;
    }
    return true;
  };
  try {
    return json::parse(begin, end, cb);
  } catch (const JsonProblem& p) {
    fail(what, ": invalid JSON: ", p.what);
  } catch (const json::exception& e) {
    fail(what, ": invalid JSON: ", e.what());
  }
}

nlohmann::json parse_json(const std::string& text, const std::string& what, int max_depth) {
  return parse_json(text.data(), text.data() + text.size(), what, max_depth);
}

nlohmann::json read_json_file(const std::string& path, uint64_t max_bytes) {
  return parse_json(read_file(path, max_bytes), path);
}

namespace {
const nlohmann::json& need(const nlohmann::json& j, const std::string& key) {
  PF_CHECK(j.is_object(), "config must be a JSON object");
  PF_CHECK(j.contains(key) && !j[key].is_null(), "config is missing the key '", key, "'");
  return j[key];
}
}  // namespace

int64_t json_int(const nlohmann::json& j, const std::string& key) {
  const auto& v = need(j, key);
  PF_CHECK(v.is_number_integer(), "config key '", key, "' must be an integer, got ", v.dump());
  PF_CHECK(!v.is_number_unsigned() || v.get<uint64_t>() <= uint64_t{INT64_MAX}, "config key '", key,
           "' is too large: ", v.dump());
  return v.get<int64_t>();
}

int64_t json_int(const nlohmann::json& j, const std::string& key, int64_t fallback) {
  return j.contains(key) && !j[key].is_null() ? json_int(j, key) : fallback;
}

double json_num(const nlohmann::json& j, const std::string& key) {
  const auto& v = need(j, key);
  PF_CHECK(v.is_number(), "config key '", key, "' must be a number, got ", v.dump());
  return v.get<double>();
}

double json_num(const nlohmann::json& j, const std::string& key, double fallback) {
  return j.contains(key) && !j[key].is_null() ? json_num(j, key) : fallback;
}

bool json_bool(const nlohmann::json& j, const std::string& key, bool fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  PF_CHECK(j[key].is_boolean(), "config key '", key, "' must be true or false, got ",
           j[key].dump());
  return j[key].get<bool>();
}

std::string json_str(const nlohmann::json& j, const std::string& key, const std::string& fallback) {
  if (!j.contains(key)) return fallback;
  PF_CHECK(j[key].is_string(), "config: ", key, " must be a string, got ", j[key].dump());
  return j[key].get<std::string>();
}

}  // namespace pf
