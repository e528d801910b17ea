#include "serve/api_params.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "serve/serve_error.h"

namespace pf {

nlohmann::json parse_json_body(const std::string& body) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body);
  } catch (const nlohmann::json::parse_error& e) {
    http_fail(400, "the request body is not valid JSON (", e.what(), ")");
  }
  if (!j.is_object()) http_fail(400, "the request body must be a JSON object");
  return j;
}

namespace {
const nlohmann::json* field(const nlohmann::json& j, const char* name) {
  auto it = j.find(name);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

int64_t get_int(const nlohmann::json& j, const char* name, int64_t def, int64_t lo, int64_t hi) {
  const nlohmann::json* v = field(j, name);
  if (!v) return def;
  int64_t x = 0;
  if (v->is_number_float()) {  // 5.0 is accepted as 5; 5.5 is not an integer
    const double d = v->get<double>();
    if (!(std::abs(d) < 9e15) || d != std::floor(d))
      http_fail(400, "'", name, "' must be an integer, got ", v->dump());
    x = static_cast<int64_t>(d);
  } else if (v->is_number_unsigned()) {
    if (v->get<uint64_t>() > static_cast<uint64_t>(hi))
      http_fail(400, "'", name, "' must be in [", lo, ", ", hi, "], got ", v->dump());
    x = static_cast<int64_t>(v->get<uint64_t>());
  } else if (v->is_number_integer()) {
    x = v->get<int64_t>();
  } else {
    http_fail(400, "'", name, "' must be an integer, got ", v->dump().substr(0, 80));
  }
  if (x < lo || x > hi) http_fail(400, "'", name, "' must be in [", lo, ", ", hi, "], got ", x);
  return x;
}

double get_number(const nlohmann::json& j, const char* name, double def, double lo, double hi,
                  bool open_lo = false) {
  const nlohmann::json* v = field(j, name);
  if (!v) return def;
  if (!v->is_number()) http_fail(400, "'", name, "' must be a number, got ", v->dump());
  const double x = v->get<double>();
  if (!(open_lo ? x > lo : x >= lo) || !(x <= hi))
    http_fail(400, "'", name, "' must be in ", open_lo ? "(" : "[", lo, ", ", hi, "], got ", x);
  return x;
}

bool get_bool(const nlohmann::json& j, const char* name, bool def) {
  const nlohmann::json* v = field(j, name);
  if (!v) return def;
  if (!v->is_boolean()) http_fail(400, "'", name, "' must be true or false, got ", v->dump());
  return v->get<bool>();
}

std::string get_string(const nlohmann::json& j, const char* name) {
  const nlohmann::json* v = field(j, name);
  if (!v) return "";
  if (!v->is_string()) http_fail(400, "'", name, "' must be a string, got ", v->dump().substr(0, 80));
  return v->get<std::string>();
}

// A message's content: a string, or OpenAI's list of parts of which text parts are used.
std::string message_content(const nlohmann::json& m, size_t i) {
  const nlohmann::json* c = field(m, "content");
  if (!c) return "";
  if (c->is_string()) return c->get<std::string>();
  if (c->is_array()) {
    std::string out;
    for (const auto& part : *c) {
      if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
          !part["text"].is_string())
        http_fail(400, "messages[", i, "].content: only text parts ({\"type\":\"text\",\"text\":...}) "
                  "are supported");
      out += part["text"].get<std::string>();
    }
    return out;
  }
  http_fail(400, "messages[", i, "].content must be a string or a list of text parts");
}
}  // namespace

CompletionParams parse_completion_request(const std::string& body, bool chat,
                                          const RequestLimits& limits) {
  const nlohmann::json j = parse_json_body(body);
  CompletionParams p;
  p.chat = chat;
  if (chat) {
    const nlohmann::json* m = field(j, "messages");
    if (!m || !m->is_array() || m->empty())
      http_fail(400, "'messages' must be a non-empty list of {\"role\", \"content\"} objects");
    for (size_t i = 0; i < m->size(); ++i) {
      const auto& msg = (*m)[i];
      if (!msg.is_object()) http_fail(400, "messages[", i, "] must be an object");
      const nlohmann::json* role = field(msg, "role");
      if (!role || !role->is_string())
        http_fail(400, "messages[", i, "].role must be a string");
      const std::string r = role->get<std::string>();
      if (r != "system" && r != "user" && r != "assistant" && r != "developer" && r != "tool")
        http_fail(400, "messages[", i, "].role '", r.substr(0, 40),
                  "' is not one of system, developer, user, assistant, tool");
      p.messages.push_back({r, message_content(msg, i)});
    }
  } else {
    const nlohmann::json* pr = field(j, "prompt");
    if (!pr) {
      p.prompt = "";
    } else if (pr->is_string()) {
      p.prompt = pr->get<std::string>();
    } else if (pr->is_array() && pr->size() == 1 && (*pr)[0].is_string()) {
      p.prompt = (*pr)[0].get<std::string>();
    } else if (pr->is_array() && std::all_of(pr->begin(), pr->end(), [](const auto& v) {
                 return v.is_number_integer();
               })) {
      std::vector<int32_t> ids;
      for (const auto& v : *pr) {
        const int64_t id = v.get<int64_t>();
        if (id < 0 || id > INT32_MAX) http_fail(400, "prompt token id ", id, " is out of range");
        ids.push_back(static_cast<int32_t>(id));
      }
      p.prompt_ids = std::move(ids);
    } else {
      http_fail(400, "'prompt' must be a string, a list of one string, or a list of token ids");
    }
  }
  if (get_int(j, "n", 1, 1, 1) != 1) http_fail(400, "'n' must be 1");
  p.stream = get_bool(j, "stream", false);
  // max_completion_tokens is the newer name for chat requests.
  const int64_t mt = get_int(j, "max_tokens", limits.default_max_tokens, 1, limits.max_tokens);
  p.max_tokens = get_int(j, "max_completion_tokens", mt, 1, limits.max_tokens);
  p.sampling.temperature = static_cast<float>(get_number(j, "temperature", 0.8, 0.0, 100.0));
  p.sampling.top_p = static_cast<float>(get_number(j, "top_p", 1.0, 0.0, 1.0, /*open_lo=*/true));
  p.sampling.top_k = get_int(j, "top_k", 0, 0, 1 << 24);
  const nlohmann::json* seed = field(j, "seed");
  if (seed) {
    if (!seed->is_number_unsigned() && !(seed->is_number_integer() && seed->get<int64_t>() >= 0))
      http_fail(400, "'seed' must be a non-negative integer, got ", seed->dump());
    p.seed = seed->get<uint64_t>();
  } else {
    p.seed = std::random_device{}();  // a new sample each time, as OpenAI clients expect
  }
  if (const nlohmann::json* s = field(j, "stop")) {
    if (s->is_string()) {
      p.stop.push_back(s->get<std::string>());
    } else if (s->is_array()) {
      for (const auto& v : *s) {
        if (!v.is_string()) http_fail(400, "'stop' must be a string or a list of strings");
        p.stop.push_back(v.get<std::string>());
      }
    } else {
      http_fail(400, "'stop' must be a string or a list of strings");
    }
    if (p.stop.size() > 16) http_fail(400, "'stop' has ", p.stop.size(), " strings; at most 16");
    for (const std::string& st : p.stop)
      if (st.empty() || st.size() > 256)
        http_fail(400, "each 'stop' string must have 1 to 256 bytes");
  }
  p.session = get_string(j, "session");
  p.return_token_ids = get_bool(j, "return_token_ids", false);
  return p;
}

}  // namespace pf
