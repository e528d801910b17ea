#include "io/gguf_tokenizer.h"

#include <cstring>

#include "base/error.h"

namespace pf {

namespace {
using nlohmann::json;

// llama.cpp's token types (the same numbers as SentencePiece's piece types).
enum : int { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

std::vector<std::string> strings_at(const GgufFile& f, const std::string& key) {
  const json& a = f.at(key);
  PF_CHECK(a.is_array(), f.path(), ": ", key, " is not an array");
  std::vector<std::string> out;
  out.reserve(a.size());
  for (const json& s : a) {
    PF_CHECK(s.is_string(), f.path(), ": ", key, " holds a non-string ", s.dump());
    out.push_back(s.get<std::string>());
  }
  return out;
}

// Token types, or all normal when the file has none; checked against the token count.
std::vector<int> types_of(const GgufFile& f, size_t n) {
  std::vector<int> out(n, kNormal);
  if (!f.has_key("tokenizer.ggml.token_type")) return out;
  const json& a = f.at("tokenizer.ggml.token_type");
  PF_CHECK(a.is_array() && a.size() == n, f.path(), ": tokenizer.ggml.token_type has ",
           a.is_array() ? a.size() : 0, " entries for ", n, " tokens");
  for (size_t i = 0; i < n; ++i) {
    PF_CHECK(a[i].is_number_integer() && a[i].get<int>() >= kNormal && a[i].get<int>() <= kByte,
             f.path(), ": token ", i, " has unknown type ", a[i].dump());
    out[i] = a[i].get<int>();
  }
  return out;
}

std::string gpt2_tokenizer_json(const GgufFile& f, const std::vector<std::string>& tokens) {
  const std::vector<std::string> merges = strings_at(f, "tokenizer.ggml.merges");
  const std::vector<int> types = types_of(f, tokens.size());
  json vocab = json::object(), added = json::array();
  for (size_t i = 0; i < tokens.size(); ++i) {
    PF_CHECK(!vocab.contains(tokens[i]), f.path(), ": token '", tokens[i], "' appears twice");
    vocab[tokens[i]] = i;
    if (types[i] == kControl || types[i] == kUserDefined)
      added.push_back({{"id", i},
                       {"content", tokens[i]},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", types[i] == kUserDefined},
                       {"special", types[i] == kControl}});
  }
  json merge_list = json::array();
  for (const std::string& m : merges) {
    PF_CHECK(m.find(' ') != std::string::npos, f.path(), ": merge '", m, "' is not \"a b\"");
    merge_list.push_back(m);
  }
  const json byte_level = {{"type", "ByteLevel"},
                           {"add_prefix_space", false},
                           {"trim_offsets", true},
                           {"use_regex", true}};
  const json j = {{"version", "1.0"},
                  {"truncation", nullptr},
                  {"padding", nullptr},
                  {"added_tokens", added},
                  {"normalizer", nullptr},
                  {"pre_tokenizer", byte_level},
                  {"post_processor", nullptr},
                  {"decoder", byte_level},
                  {"model",
                   {{"type", "BPE"},
                    {"dropout", nullptr},
                    {"unk_token", nullptr},
                    {"continuing_subword_prefix", nullptr},
                    {"end_of_word_suffix", nullptr},
                    {"fuse_unk", false},
                    {"byte_fallback", false},
                    {"vocab", vocab},
                    {"merges", merge_list}}}};
  try {
    return j.dump(2) + "\n";
  } catch (const json::exception& e) {
    fail(f.path(), ": the tokenizer's tokens are not valid UTF-8 (", e.what(), ")");
  }
}

// Protobuf wire format: varints, and length-delimited fields.
void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void tag(std::string& out, int field, int wire) { varint(out, static_cast<uint64_t>(field) << 3 | wire); }
void field_varint(std::string& out, int field, int64_t v) {
  tag(out, field, 0);
  varint(out, static_cast<uint64_t>(v));  // negative int32 as 10 bytes, as protobuf does
}
void field_bytes(std::string& out, int field, const std::string& b) {
  tag(out, field, 2);
  varint(out, b.size());
  out += b;
}
void field_float(std::string& out, int field, float v) {
  tag(out, field, 5);
  char b[4];
  std::memcpy(b, &v, 4);
  out.append(b, 4);
}

int64_t id_or(const GgufFile& f, const std::string& key, int64_t fallback, size_t n) {
  const int64_t id = f.int_or(key, fallback);
  PF_CHECK(id >= -1 && id < static_cast<int64_t>(n), f.path(), ": ", key, " = ", id,
           " is outside the ", n, "-token vocabulary");
  return id;
}

// sentencepiece_model.proto's ModelProto: pieces (1), trainer_spec (2), normalizer_spec (3).
std::string spm_model_proto(const GgufFile& f, const std::vector<std::string>& tokens) {
  const size_t n = tokens.size();
  const std::vector<int> types = types_of(f, n);
  std::vector<float> scores(n, 0.0f);
  if (f.has_key("tokenizer.ggml.scores")) {
    const json& a = f.at("tokenizer.ggml.scores");
    PF_CHECK(a.is_array() && a.size() == n, f.path(), ": tokenizer.ggml.scores has ",
             a.is_array() ? a.size() : 0, " entries for ", n, " tokens");
    for (size_t i = 0; i < n; ++i) {
      PF_CHECK(a[i].is_number(), f.path(), ": score ", i, " is ", a[i].dump());
      scores[i] = a[i].get<float>();
    }
  }
  std::string out;
  bool has_unknown = false, has_byte = false;
  for (size_t i = 0; i < n; ++i) {
    std::string piece;
    field_bytes(piece, 1, tokens[i]);
    field_float(piece, 2, scores[i]);
    field_varint(piece, 3, types[i]);
    field_bytes(out, 1, piece);
    has_unknown = has_unknown || types[i] == kUnknown;
    has_byte = has_byte || types[i] == kByte;
  }
  PF_CHECK(has_unknown, f.path(), ": the SentencePiece vocabulary has no unknown token");
  std::string trainer;
  field_varint(trainer, 3, 2);  // model_type BPE, as Llama's tokenizer.model
  field_varint(trainer, 4, static_cast<int64_t>(n));
  field_varint(trainer, 35, has_byte ? 1 : 0);  // byte_fallback
  field_varint(trainer, 40, id_or(f, "tokenizer.ggml.unknown_token_id", 0, n));
  field_varint(trainer, 41, id_or(f, "tokenizer.ggml.bos_token_id", -1, n));
  field_varint(trainer, 42, id_or(f, "tokenizer.ggml.eos_token_id", -1, n));
  field_varint(trainer, 43, id_or(f, "tokenizer.ggml.padding_token_id", -1, n));
  field_bytes(out, 2, trainer);
  const bool prefix = !f.has_key("tokenizer.ggml.add_space_prefix") ||
                      f.at("tokenizer.ggml.add_space_prefix").get<bool>();
  std::string norm;
  field_bytes(norm, 1, "identity");
  field_varint(norm, 3, prefix ? 1 : 0);  // add_dummy_prefix
  field_varint(norm, 4, 0);               // remove_extra_whitespaces: Llama keeps them
  field_varint(norm, 5, 1);               // escape_whitespaces (' ' -> U+2581)
  field_bytes(out, 3, norm);
  return out;
}
}  // namespace

std::vector<std::pair<std::string, std::string>> gguf_tokenizer_files(
    const GgufFile& f, std::vector<std::string>& notes) {
  if (!f.has_key("tokenizer.ggml.model")) {
    notes.push_back("the file has no tokenizer (tokenizer.ggml.model); give one with the model");
    return {};
  }
  const std::string model = f.string_or("tokenizer.ggml.model", "");
  const std::vector<std::string> tokens = strings_at(f, "tokenizer.ggml.tokens");
  PF_CHECK(!tokens.empty(), f.path(), ": tokenizer.ggml.tokens is empty");
  if (model == "gpt2") {
    const std::string pre = f.string_or("tokenizer.ggml.pre", "default");
    if (pre != "default" && pre != "gpt-2" && pre != "gpt2" && pre != "olmo") {
      notes.push_back("tokenizer.ggml.pre '" + pre +
                      "' splits text with a regex other than GPT-2's; the tokenizer is not "
                      "written (only GPT-2's split is supported)");
      return {};
    }
    return {{"tokenizer.json", gpt2_tokenizer_json(f, tokens)}};
  }
  if (model == "llama") return {{"tokenizer.model", spm_model_proto(f, tokens)}};
  notes.push_back("tokenizer.ggml.model '" + model +
                  "' is not supported (gpt2 and llama are); the tokenizer is not written");
  return {};
}

}  // namespace pf
