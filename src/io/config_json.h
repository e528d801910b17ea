// Reading model configs: required keys give a clear error naming the key and file.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace pf {

// Parses a JSON file; errors name the file and the parse problem.
nlohmann::json read_json_file(const std::string& path);

// Typed access with a clear error ("config is missing the key 'hidden_size'").
int64_t json_int(const nlohmann::json& j, const std::string& key);
int64_t json_int(const nlohmann::json& j, const std::string& key, int64_t fallback);
double json_num(const nlohmann::json& j, const std::string& key);
double json_num(const nlohmann::json& j, const std::string& key, double fallback);
bool json_bool(const nlohmann::json& j, const std::string& key, bool fallback);

}  // namespace pf
