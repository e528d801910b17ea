// Chat templates: turning a conversation into the prompt text a model was trained on, by
// rendering the Jinja template from its tokenizer_config.json the way HF's
// apply_chat_template does (trim_blocks and lstrip_blocks on, raise_exception available).
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pf {

namespace jinja {
struct Template;
}

struct ChatMessage {
  std::string role, content;
};

class ChatTemplate {
 public:
  // Parses a Jinja chat template. Errors (pf::Error) name the problem and the line/column.
  static ChatTemplate parse(const std::string& source);
  // For models without a template: each message as "<Role>: <content>\n" with the role
  // capitalised, and with add_generation_prompt "Assistant: " (with its space) at the end.
  static ChatTemplate plain_default();

  // The template sees messages (role, content), add_generation_prompt, bos_token, eos_token,
  // and tools = documents = none as HF passes them. A template's raise_exception(msg) throws
  // pf::Error(msg); other errors name the line and column.
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                     const std::string& bos_token, const std::string& eos_token) const;
  const std::string& source() const { return source_; }

 private:
  ChatTemplate() = default;
  std::string source_;
  std::shared_ptr<const jinja::Template> tmpl_;  // immutable once parsed, so copies share it
};

struct ModelChatTemplate {
  ChatTemplate tmpl;
  std::string bos_token, eos_token;
};

// Reads <dir>/tokenizer_config.json when it exists: "chat_template" (a string, or a list of
// {"name", "template"}: the one named "default", else the first) and "bos_token"/"eos_token"
// (a string, or an object with "content"). std::nullopt when the file or the chat_template
// key is absent (or null); errors name the file.
std::optional<ModelChatTemplate> load_chat_template(const std::string& model_dir);

}  // namespace pf
