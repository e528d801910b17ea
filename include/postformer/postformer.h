// postformer's embedding API: load a model directory, open sessions, feed tokens or text,
// sample, and save, load or fork a session's state. This header is all an application
// includes; link postformer::postformer (find_package(postformer)). Errors are thrown as
// postformer::Error with a message that names the problem.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#define POSTFORMER_API __attribute__((visibility("default")))

namespace postformer {

class POSTFORMER_API Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

struct Sampling {
  float temperature = 0.8f;  // 0 = greedy
  int64_t top_k = 0;         // 0 = off
  float top_p = 1.0f;        // 1 = off
};

class Session;

class POSTFORMER_API Model {
 public:
  // A directory with config.json, model.safetensors and (optionally) tokenizer files, as
  // `postformer train` writes it or a converted Hugging Face checkpoint.
  static Model load(const std::string& dir, int threads = 0);
  std::string arch() const;
  int64_t vocab_size() const;
  int64_t max_context() const;  // 2^40 for recurrent models: no limit
  bool recurrent() const;       // state size independent of the context length
  int64_t num_params() const;
  // Text to token ids; at_start also adds what a sequence begins with (a BOS token).
  std::vector<int32_t> encode(const std::string& text, bool at_start = false) const;
  std::string decode(const std::vector<int32_t>& ids) const;
  // A new empty session holding up to `context` tokens (0 = the model's maximum, capped at
  // 4096 for attention models; recurrent models hold any number).
  Session open_session(int64_t context = 0) const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

class POSTFORMER_API Session {
 public:
  // Reads tokens: the state advances by ids.size().
  void feed(const std::vector<int32_t>& ids);
  // Reads text (with a BOS first when the session is empty and the tokenizer has one).
  void feed_text(const std::string& text);
  // Samples the next token from the logits after the last token read; it is not read yet
  // (feed it to continue). Deterministic for a seed: see seed().
  int32_t sample(const Sampling& s = {});
  void seed(uint64_t seed);
  // Samples and reads up to max_tokens tokens, calling on_text with each piece of text
  // (return false to stop early); stops at the tokenizer's end-of-text token. Returns the text.
  std::string generate(int64_t max_tokens, const Sampling& s = {},
                       const std::function<bool(const std::string&)>& on_text = {});
  // Logits after the last token read: (vocab_size).
  std::vector<float> logits() const;
  int64_t position() const;  // tokens read
  int64_t state_bytes() const;
  // A safetensors file that only this model (same config and weights) can load.
  void save(const std::string& path) const;
  void load(const std::string& path);
  // An independent copy: both continue from here.
  Session fork() const;

  struct Impl;

 private:
  friend class Model;
  std::shared_ptr<Impl> impl_;
};

}  // namespace postformer
