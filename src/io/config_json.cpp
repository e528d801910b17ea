#include "io/config_json.h"

#include <fstream>
#include <sstream>

#include "base/error.h"

namespace pf {

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  PF_CHECK(in.good(), "cannot open ", path);
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": invalid JSON: ", e.what());
  }
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

}  // namespace pf
