// The body of an OpenAI-style completion or chat request, parsed and checked: every bad
// field is a 400 that names it.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "infer/sampler.h"
#include "serve/chat_template.h"

namespace pf {

struct RequestLimits {
  int64_t max_tokens = 4096;         // largest max_tokens a request may ask for
  int64_t default_max_tokens = 256;  // when it asks for none
};

struct CompletionParams {
  bool chat = false;
  std::string prompt;                     // completions: text
  std::optional<std::vector<int32_t>> prompt_ids;  // completions: token ids instead of text
  std::vector<ChatMessage> messages;      // chat
  bool stream = false;
  int64_t max_tokens = 0;
  SamplingOptions sampling;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  std::string session;          // "" = none
  bool return_token_ids = false;  // extension: "token_ids" beside the text
};

// Parses a request body (a JSON object); `chat` selects /v1/chat/completions's fields.
// Unknown fields are ignored, as OpenAI clients send many (model, user, ...).
CompletionParams parse_completion_request(const std::string& body, bool chat,
                                          const RequestLimits& limits);
// The body as a JSON object, or 400 naming the parse error.
nlohmann::json parse_json_body(const std::string& body);

}  // namespace pf
