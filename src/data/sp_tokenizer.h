// SentencePiece tokenizers (tokenizer.model), as shipped with Llama-family checkpoints and the
// flash-linear-attention RetNet/GLA models that reuse the Llama 2 tokenizer (BPE with byte
// fallback, add_dummy_prefix, <unk>=0, <s>=1, </s>=2). Encoding is libsentencepiece itself, so
// normalization, dummy prefix and byte fallback follow the model file exactly.
//
// decode_token() gives one piece's raw bytes so that concatenating them streams the text:
// "▁" (U+2581) becomes a space, byte pieces "<0xNN>" the single byte NN, control pieces (<s>,
// </s>) nothing, <unk> the model's unk surface (" ⁇ " by default). Unlike
// SentencePieceProcessor::Decode, it cannot drop the dummy-prefix space of the first piece (it
// does not know which piece is first): decoding encode("Hello") gives " Hello". Callers that
// print a prompt themselves and then stream only generated tokens are unaffected, since the
// space in front of a continued word is real.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace pf {

class SentencePieceTokenizer : public Tokenizer {
 public:
  // Errors (missing file, not a SentencePiece model) are pf::Error starting with the path.
  static std::unique_ptr<SentencePieceTokenizer> from_file(const std::string& path);
  ~SentencePieceTokenizer() override;

  std::string name() const override { return "sentencepiece"; }
  int64_t vocab_size() const override { return static_cast<int64_t>(id_bytes_.size()); }
  // Ids without BOS/EOS; the dummy prefix (if the model has one) is added by SentencePiece.
  std::vector<int32_t> encode(const std::string& text) const override;
  // encode() with bos_id() in front, when the model has a BOS piece (Llama prompts expect it).
  std::vector<int32_t> encode_prompt(const std::string& text) const override {
    return encode_with_bos(text);
  }
  std::vector<int32_t> encode_with_bos(const std::string& text) const;
  // The piece's raw bytes (a byte-fallback piece may be part of a UTF-8 sequence).
  std::string decode_token(int32_t id) const override;
  // {eos_id()} when the model defines one.
  std::vector<int32_t> stop_ids() const override;

  // Reserved ids; empty when the model disables them (SentencePiece's -1).
  std::optional<int32_t> bos_id() const { return bos_id_; }
  std::optional<int32_t> eos_id() const { return eos_id_; }
  std::optional<int32_t> unk_id() const { return unk_id_; }
  // The piece as spelled in the model ("▁the", "<0x0A>", "<s>").
  const std::string& piece(int32_t id) const;

 private:
  SentencePieceTokenizer();
  void load(const std::string& path);
  void check_id(int32_t id) const;

  std::string path_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::vector<std::string> id_bytes_;  // id -> bytes decode_token returns, built once at load
  std::optional<int32_t> bos_id_, eos_id_, unk_id_;
};

}  // namespace pf
