// Reading figures out of a results.json that may be partial (an interrupted or failed arch):
// a missing or null figure reads as NaN and prints as "-".
#pragma once
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"

namespace pf::report {

// j[k1][k2]... as a number, NaN when any step is missing or not a number.
inline double num(const nlohmann::json& j, const std::vector<std::string>& path) {
  const nlohmann::json* p = &j;
  for (const std::string& k : path) {
    if (!p->is_object() || !p->contains(k)) return std::nan("");
    p = &(*p)[k];
  }
  return p->is_number() ? p->get<double>() : std::nan("");
}

// The decode entry of `arch` at `context`, or null.
inline const nlohmann::json* decode_at(const nlohmann::json& arch, int64_t context) {
  if (!arch.contains("decode") || !arch["decode"].is_array()) return nullptr;
  for (const nlohmann::json& d : arch["decode"])
    if (d.is_object() && d.value("context", int64_t{-1}) == context) return &d;
  return nullptr;
}

inline std::string fmt(double v, const char* f) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

using Rows = std::vector<std::vector<std::string>>;  // cells, header row first
Rows main_rows(const nlohmann::json& r);             // one row per arch: the headline figures
Rows config_rows(const nlohmann::json& r);           // arch, parameters, shape
Rows decode_rows(const nlohmann::json& r);           // arch x context: decode ms, state MiB
std::vector<std::pair<std::string, Rows>> task_rows(const nlohmann::json& r);  // per task

// Runs f, turning a JSON type error on a malformed results.json into a pf::Error.
template <typename F>
auto guarded(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("results.json: ") + e.what());
  }
}

// Checks the parts of results.json every report needs; errors name the key.
void check_results(const nlohmann::json& r);

}  // namespace pf::report
