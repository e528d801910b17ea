// JSON bodies of responses: results, OpenAI-style errors, session objects.
#pragma once
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <string>

#include "serve/session_store.h"

namespace pf {

// Model text may hold anything; invalid UTF-8 is replaced rather than failing the dump.
inline std::string dump_json(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

inline void send_json(httplib::Response& res, int status, const nlohmann::json& j) {
  res.status = status;
  res.set_content(dump_json(j), "application/json");
}

inline void send_error(httplib::Response& res, int status, const std::string& type,
                       const std::string& message) {
  send_json(res, status, {{"error", {{"message", message}, {"type", type}, {"code", status}}}});
}

inline nlohmann::json session_json(const SessionInfo& s) {
  return {{"id", s.id},           {"object", "session"}, {"position", s.position},
          {"state_bytes", s.state_bytes}, {"resident", s.resident}, {"busy", s.busy},
          {"turns", s.turns}};
}

}  // namespace pf
