// Byte-level BPE from a Hugging Face tokenizer.json (GPT-2, GPT-NeoX: the tokenizer the
// state-spaces Mamba checkpoints ship). Encoding follows the tokenizers library: added tokens
// are split out first, the rest is pre-tokenized (GPT-2 regex), mapped byte-to-unicode and
// merged by rank. Not supported, with an error naming the field: other model types,
// byte_fallback, normalizers other than NFC, pre-tokenizers other than ByteLevel and a GPT-2
// regex Split, decoders other than ByteLevel.
//
// Assumptions: an NFC normalizer is taken as the identity (input text is assumed to be NFC
// already); the post_processor is ignored, so encode() adds no BOS/EOS; offsets are not kept.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/tokenizer.h"

namespace pf {

// GPT-2's byte-to-unicode map: printable bytes keep their code point, the other 68 bytes
// (controls, space, 0x7F-0xA0, 0xAD) get U+0100.. in byte order, so every BPE symbol is a
// visible character (' ' -> U+0120 'Ġ', '\n' -> U+010A 'Ċ').
const std::array<uint32_t, 256>& byte_to_unicode();

// Character classes of the GPT-2 split regex. \s is Unicode White_Space and \p{N} a table of
// Unicode 14 numbers, both exact. \p{L} for non-ASCII is glibc's iswalpha_l under a C.UTF-8
// locale, minus the numbers and a table of the alphabetic non-letters (marks such as Indic
// vowel signs, circled letters): exact for Unicode 14 with glibc 2.36; other glibc versions
// differ only on code points their Unicode version adds or changes. Without such a locale,
// non-ASCII code points count as letters unless they are spaces, numbers, marks or in known
// punctuation and symbol blocks (emoji included): an approximation.
enum class CharClass : uint8_t { kLetter, kNumber, kSpace, kOther };
CharClass char_class(uint32_t cp);

// Splits text like the GPT-2 pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// keeping every byte (the pieces concatenate to the text). Invalid UTF-8 bytes count as
// punctuation, one byte each.
std::vector<std::string> gpt2_pre_split(const std::string& text);

class BpeTokenizer : public Tokenizer {
 public:
  // Errors (bad JSON, missing or unsupported parts) are pf::Error starting with the path.
  static std::unique_ptr<BpeTokenizer> from_file(const std::string& tokenizer_json_path);

  std::string name() const override { return "bpe"; }
  // Max id + 1 over the vocab and the added tokens.
  int64_t vocab_size() const override { return vocab_size_; }
  std::vector<int32_t> encode(const std::string& text) const override;
  // The token's raw bytes (possibly part of a UTF-8 sequence); added tokens give their content.
  std::string decode_token(int32_t id) const override;

  // Id of a token as spelled in tokenizer.json ("Ġthe", "<|endoftext|>"); added tokens first.
  std::optional<int32_t> token_id(const std::string& token) const;
  // Ids of the added tokens marked special (e.g. <|endoftext|>), in file order.
  const std::vector<int32_t>& special_ids() const { return special_ids_; }
  // The end-of-text token, when the vocabulary has one of the usual spellings.
  std::vector<int32_t> stop_ids() const override;
  std::vector<int32_t> unused_ids() const override;
  bool is_added(int32_t id) const;  // an id of added_tokens

 private:
  struct AddedToken {
    int32_t id = 0;
    std::string content;
    bool special = false, single_word = false, lstrip = false, rstrip = false, normalized = true;
  };
  // A stretch of input: either one added token (id >= 0) or text still to pre-tokenize.
  struct Segment {
    int32_t added_id = -1;
    std::string text;
  };
  struct Merge {
    int32_t rank = 0, id = 0;  // rank = position in the merges list; id of the merged token
  };
  // ByteLevel is a prefix-space step (if add_prefix_space) then a split (if use_regex); its
  // byte-to-unicode mapping is implicit, since BPE runs on bytes through byte_ids_.
  enum class PreStep : uint8_t { kPrefixSpace, kGpt2Split };

  BpeTokenizer() = default;
  void load(const std::string& path);
  void load_model(const nlohmann::json& model);
  void load_added_tokens(const nlohmann::json& added);
  void load_pre_tokenizer(const nlohmann::json& pre);
  std::vector<Segment> split_added(const std::string& text, bool normalized_pass) const;
  std::vector<std::string> pre_tokenize(const std::string& text) const;
  void bpe_piece(const std::string& piece, std::vector<int32_t>& out) const;
  std::vector<int32_t> merge_symbols(const std::string& piece) const;

  std::string path_;
  std::unordered_map<std::string, int32_t> vocab_;  // token (byte-to-unicode spelling) -> id
  std::vector<std::string> id_bytes_;               // id -> raw bytes
  std::vector<uint8_t> id_known_;                   // id -> has an entry (ids may have gaps)
  std::unordered_map<uint64_t, Merge> merges_;      // (left id << 32 | right id) -> merge
  std::array<int32_t, 256> byte_ids_{};             // byte -> id of its one-char token, or -1
  std::array<std::string, 256> byte_chars_;         // byte -> its mapped char in UTF-8
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false, ignore_merges_ = false;
  std::vector<AddedToken> added_;
  std::array<std::vector<uint32_t>, 256> added_by_byte_;  // first byte -> added_ indices
  std::vector<int32_t> special_ids_;
  std::vector<PreStep> pre_steps_;
  int64_t vocab_size_ = 0;

  // Pre-token -> ids; words repeat a lot in text. Guarded so encode() stays thread-safe.
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace pf
