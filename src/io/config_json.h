// Reading model configs: required keys give a clear error naming the key and file.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace pf {

constexpr int kMaxJsonDepth = 64;

// Parses JSON strictly: a duplicate key in an object and nesting deeper than max_depth are
// errors (parsers disagree on the first; the second would exhaust the stack of whatever
// walks the tree). Errors name `what` (usually the file) and the problem.
nlohmann::json parse_json(const std::string& text, const std::string& what,
                          int max_depth = kMaxJsonDepth);
nlohmann::json parse_json(const char* begin, const char* end, const std::string& what,
                          int max_depth = kMaxJsonDepth);
// A regular file of at most max_bytes, parsed as above.
nlohmann::json read_json_file(const std::string& path, uint64_t max_bytes = uint64_t{1} << 30);

// Typed access with a clear error ("config is missing the key 'hidden_size'").
int64_t json_int(const nlohmann::json& j, const std::string& key);
int64_t json_int(const nlohmann::json& j, const std::string& key, int64_t fallback);
double json_num(const nlohmann::json& j, const std::string& key);
double json_num(const nlohmann::json& j, const std::string& key, double fallback);
bool json_bool(const nlohmann::json& j, const std::string& key, bool fallback);
// A string when present (null or any other type is an error), else fallback.
std::string json_str(const nlohmann::json& j, const std::string& key, const std::string& fallback);

}  // namespace pf
