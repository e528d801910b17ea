#include "serve/chat_template.h"

#include <filesystem>

#include "base/error.h"
#include "io/config_json.h"
#include "serve/jinja_ast.h"

namespace pf {

namespace {

// As a template so the default goes through the same parser and renderer as a model's own.
constexpr const char* kPlainDefault =
    "{% for message in messages %}"
    "{{ message['role'] | capitalize }}: {{ message['content'] }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant: {% endif %}";

std::string token_text(const nlohmann::json& cfg, const char* key, const std::string& path) {
  if (!cfg.contains(key) || cfg[key].is_null()) return "";
  const nlohmann::json& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  // An AddedToken as the tokenizer saved it: {"__type": "AddedToken", "content": "<s>", ...}
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  fail(path, ": '", key, "' must be a string or an object with a string 'content', got ", v.dump());
}

std::string pick_template(const nlohmann::json& t, const std::string& path) {
  if (t.is_string()) return t.get<std::string>();
  PF_CHECK(t.is_array(), path, ": 'chat_template' must be a string or a list of {name, template}");
  PF_CHECK(!t.empty(), path, ": 'chat_template' is an empty list");
  const nlohmann::json* chosen = nullptr;  // the first entry named "default", else the first
  bool chosen_default = false;
  for (const auto& entry : t) {
    PF_CHECK(entry.is_object() && entry.contains("template") && entry["template"].is_string(), path,
             ": every 'chat_template' list entry needs a string 'template'");
    const bool is_default = entry.contains("name") && entry["name"] == "default";
    if (!chosen || (is_default && !chosen_default)) chosen = &entry;
    chosen_default = chosen_default || is_default;
  }
  return (*chosen)["template"].get<std::string>();
}

}  // namespace

ChatTemplate ChatTemplate::parse(const std::string& source) {
  ChatTemplate t;
  t.source_ = source;
  t.tmpl_ = jinja::parse_template(source);
  return t;
}

ChatTemplate ChatTemplate::plain_default() { return parse(kPlainDefault); }

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                 const std::string& bos_token, const std::string& eos_token) const {
  using jinja::Value;
  jinja::List list;
  list.reserve(messages.size());
  for (const ChatMessage& m : messages)
    list.push_back(Value::make_dict({{"role", Value::string(m.role)}, {"content", Value::string(m.content)}}));
  const jinja::Dict globals = {
      {"messages", Value::make_list(std::move(list))},
      {"add_generation_prompt", Value::boolean(add_generation_prompt)},
      {"bos_token", Value::string(bos_token)},
      {"eos_token", Value::string(eos_token)},
      // HF passes these as None when the request has none; templates test `tools is not none`.
      {"tools", Value::none()},
      {"documents", Value::none()},
  };
  return jinja::render_template(*tmpl_, globals);
}

std::optional<ModelChatTemplate> load_chat_template(const std::string& model_dir) {
  const std::string path = (std::filesystem::path(model_dir) / "tokenizer_config.json").string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  const nlohmann::json cfg = read_json_file(path, uint64_t{256} << 20);
  PF_CHECK(cfg.is_object(), path, ": expected a JSON object");
  if (!cfg.contains("chat_template") || cfg["chat_template"].is_null()) return std::nullopt;
  const std::string source = pick_template(cfg["chat_template"], path);
  std::optional<ModelChatTemplate> out;
  try {
    out.emplace(ModelChatTemplate{ChatTemplate::parse(source), token_text(cfg, "bos_token", path),
                                  token_text(cfg, "eos_token", path)});
  } catch (const Error& e) {
    const std::string msg = e.what();
    if (msg.rfind(path, 0) == 0) throw;  // already names the file
    fail(path, ": ", msg);
  }
  return out;
}

}  // namespace pf
