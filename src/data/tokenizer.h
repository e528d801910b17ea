// Tokenizers. The byte-level tokenizer (vocab 256) is the default: a model directory
// without tokenizer files uses it.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pf {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::string name() const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual std::vector<int32_t> encode(const std::string& text) const = 0;
  // Text for one token; for byte-level tokenizers this may be part of a UTF-8 sequence.
  virtual std::string decode_token(int32_t id) const = 0;
  std::string decode(const std::vector<int32_t>& ids) const;
  // A prompt as the model expects it at the start of a sequence (e.g. with BOS).
  virtual std::vector<int32_t> encode_prompt(const std::string& text) const { return encode(text); }
  // Ids that end generation (e.g. an end-of-text token); none by default.
  virtual std::vector<int32_t> stop_ids() const { return {}; }
  // Ids below vocab_size() that name no token (holes in a vocabulary): never sampled.
  virtual std::vector<int32_t> unused_ids() const { return {}; }
};

class ByteTokenizer : public Tokenizer {
 public:
  std::string name() const override { return "byte"; }
  int64_t vocab_size() const override { return 256; }
  std::vector<int32_t> encode(const std::string& text) const override;
  std::string decode_token(int32_t id) const override;
};

// True when the directory ships tokenizer files (else it uses the byte tokenizer).
bool has_tokenizer_files(const std::string& model_dir);
// The tokenizer a model directory asks for (byte-level when it has no tokenizer files).
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_dir);
// The same, refused when the tokenizer has more ids than the model has embedding rows.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_dir, int64_t model_vocab);

// Whitespace-separated token ids from a file; errors name the file and the bad entry.
std::vector<int32_t> read_token_file(const std::string& path);

}  // namespace pf
