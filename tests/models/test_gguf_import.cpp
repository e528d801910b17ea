// GGUF import: llama, mamba and mamba2 models that the tests export to GGUF (names,
// permutations and reshapes as llama.cpp's converter writes them) in F32, F16, BF16 and Q8_0
// load back with the logits of the exported model; Q8_0 and BF16 stay compact bit for bit;
// the tokenizers in the file (byte-level BPE, SentencePiece) encode as the originals; bad
// files get errors naming the fault.
#include <gtest/gtest.h>
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cmath>
#include <cstring>
#include <set>
#include <unordered_map>

#include "base/error.h"
#include "data/bpe_tokenizer.h"
#include "data/sp_tokenizer.h"
#include "io/checkpoint.h"
#include "io/gguf.h"
#include "io/gguf_import.h"
#include "io/gguf_tokenizer.h"
#include "io/read_file.h"
#include "models/compact_weights.h"
#include "models/gguf_test_writer.h"
#include "models/lm.h"
#include "models/model_test_util.h"

namespace pf {
namespace {

using nlohmann::json;
using test::GgufWriter;

json llama_cfg() {
  return {{"model_type", "llama"},       {"hidden_size", 64},       {"intermediate_size", 128},
          {"num_hidden_layers", 2},      {"num_attention_heads", 4}, {"num_key_value_heads", 2},
          {"vocab_size", 256},           {"max_position_embeddings", 256},
          {"rms_norm_eps", 1e-5},        {"rope_theta", 10000.0},   {"tie_word_embeddings", false}};
}
json mamba_cfg() {
  return {{"model_type", "mamba"}, {"hidden_size", 64}, {"num_hidden_layers", 2},
          {"state_size", 8},       {"vocab_size", 256}, {"tie_word_embeddings", true}};
}
json mamba2_cfg() {
  return {{"model_type", "mamba2"}, {"hidden_size", 64},    {"num_hidden_layers", 2},
          {"state_size", 16},       {"head_dim", 16},       {"n_groups", 1},
          {"chunk_size", 32},       {"vocab_size", 256},    {"tie_word_embeddings", true}};
}

struct Param {
  std::string name;
  Tensor value;  // f32
};
std::vector<Param> params_of(LanguageModel& m) {
  std::vector<Param> out;
  m.visit_params([&](const std::string& n, Var& v, ParamKind) { out.push_back({n, v.value()}); });
  return out;
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  return at == std::string::npos ? s : s.replace(at, from.size(), to);
}

// Hugging Face name -> llama.cpp name, as convert_hf_to_gguf.py maps them.
std::string gguf_name(const std::string& hf) {
  static const std::vector<std::pair<std::string, std::string>> table = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"backbone.embeddings.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"backbone.norm_f.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"},
      {"input_layernorm", "attn_norm"},
      {"post_attention_layernorm", "ffn_norm"},
      {"self_attn.q_proj", "attn_q"},
      {"self_attn.k_proj", "attn_k"},
      {"self_attn.v_proj", "attn_v"},
      {"self_attn.o_proj", "attn_output"},
      {"mlp.gate_proj", "ffn_gate"},
      {"mlp.up_proj", "ffn_up"},
      {"mlp.down_proj", "ffn_down"},
      {"mixer.in_proj", "ssm_in"},
      {"mixer.conv1d", "ssm_conv1d"},
      {"mixer.x_proj", "ssm_x"},
      {"mixer.dt_proj", "ssm_dt"},
      {"mixer.dt_bias", "ssm_dt.bias"},
      {"mixer.A_log", "ssm_a"},
      {"mixer.D", "ssm_d"},
      {"mixer.out_proj", "ssm_out"},
      {"mixer.norm", "ssm_norm"},
      {".norm.weight", ".attn_norm.weight"},
  };
  std::string n = hf;
  for (const std::string& p : {std::string("model.layers."), std::string("backbone.layers.")})
    if (n.rfind(p, 0) == 0) n = "blk." + n.substr(p.size());
  for (const auto& [from, to] : table) {
    const std::string m = replace(n, from, to);
    if (m != n) return m;
  }
  return n;
}

// Writes m as llama.cpp would: matrices (2-D, rows a multiple of 32) in `type`, the rest f32.
// Returns the values each tensor was written with, after the type's rounding, by HF name.
std::map<std::string, std::vector<float>> export_gguf(LanguageModel& m, const json& cfg,
                                                      uint32_t type, GgufWriter& w,
                                                      std::set<std::string>* compact = nullptr) {
  const std::string arch = cfg["model_type"];
  const int64_t d = cfg["hidden_size"], L = cfg["num_hidden_layers"];
  w.str("general.architecture", arch);
  w.u32(arch + ".embedding_length", d);
  w.u32(arch + ".block_count", L);
  w.f32(arch + ".attention.layer_norm_rms_epsilon", 1e-5f);
  std::map<std::string, Tensor> p;
  for (const Param& q : params_of(m)) p[q.name] = q.value;
  if (arch == "llama") {
    w.u32("llama.feed_forward_length", cfg["intermediate_size"]);
    w.u32("llama.attention.head_count", cfg["num_attention_heads"]);
    w.u32("llama.attention.head_count_kv", cfg["num_key_value_heads"]);
    w.u32("llama.context_length", cfg["max_position_embeddings"]);
    w.f32("llama.rope.freq_base", 10000.0f);
  } else {
    const std::string l0 = "backbone.layers.0.mixer.";
    w.u32(arch + ".ssm.conv_kernel", p[l0 + "conv1d.weight"].size(2));
    w.u32(arch + ".ssm.inner_size", p[l0 + "out_proj.weight"].size(1));
    w.u32(arch + ".ssm.state_size", cfg["state_size"]);
    w.u32(arch + ".ssm.time_step_rank", arch == "mamba" ? p[l0 + "dt_proj.weight"].size(1)
                                                        : p[l0 + "A_log"].numel());
    if (arch == "mamba2") w.u32("mamba2.ssm.group_count", cfg["n_groups"]);
  }
  std::map<std::string, std::vector<float>> written;
  for (const Param& q : params_of(m)) {
    std::vector<float> v = q.value.to_vector();
    Shape shape = q.value.shape();
    const std::string g = gguf_name(q.name);
    const int64_t heads = q.name.find("q_proj") != std::string::npos ? 4 : 2;
    if (q.name.find("q_proj") != std::string::npos || q.name.find("k_proj") != std::string::npos) {
      // HF rotate-half rows -> llama.cpp's interleaved pairs.
      const int64_t rows = shape[0], cols = shape[1], hd = rows / heads, half = hd / 2;
      std::vector<float> out(v.size());
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t j = 0; j < 2; ++j)
          for (int64_t i = 0; i < half; ++i)
            std::memcpy(&out[(h * hd + 2 * i + j) * cols], &v[(h * hd + j * half + i) * cols],
                        cols * sizeof(float));
      v = out;
    }
    if (g.find("ssm_a") != std::string::npos)
      for (float& x : v) x = -std::exp(x);
    if (g.find("ssm_conv1d.weight") != std::string::npos) shape = {shape[0], shape[2]};
    if (arch == "mamba2" && (g.ends_with("ssm_a") || g.ends_with("ssm_d"))) shape = {shape[0], 1};
    if (g.find("ssm_norm") != std::string::npos) shape = {cfg["n_groups"], shape[0] / cfg["n_groups"].get<int64_t>()};
    const bool matrix = shape.size() == 2 && shape[1] % 32 == 0 && g.find("conv1d") == std::string::npos &&
                        g.find("ssm_norm") == std::string::npos && !g.ends_with("ssm_a");
    const uint32_t t = matrix ? type : test::kGF32;
    w.tensor(g, shape, v, t);
    if (compact && t != test::kGF32) compact->insert(q.name);
    written[q.name] = GgufWriter::rounded(q.value.to_vector(), t);  // HF order, rounded
  }
  return written;
}

// logits of every position of a fixed byte string.
std::vector<float> logits(LanguageModel& m) {
  const std::string text = "In the beginning God created the heaven and the earth.";
  std::vector<int32_t> ids(text.begin(), text.end());
  auto s = m.new_session(static_cast<int64_t>(ids.size()));
  return s->forward(ids.data(), static_cast<int64_t>(ids.size()), true).to_vector();
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) d = std::max(d, std::fabs(double(a[i]) - b[i]));
  return d;
}

struct Case {
  std::string name;
  json cfg;
  uint32_t type;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::vector<Case> cases() {
  std::vector<Case> out;
  const std::pair<const char*, json> archs[] = {
      {"llama", llama_cfg()}, {"mamba", mamba_cfg()}, {"mamba2", mamba2_cfg()}};
  const std::pair<const char*, uint32_t> types[] = {
      {"f32", test::kGF32}, {"f16", test::kGF16}, {"bf16", test::kGBF16}, {"q8_0", test::kGQ8_0}};
  for (const auto& [a, cfg] : archs)
    for (const auto& [t, type] : types) out.push_back({std::string(a) + "_" + t, cfg, type});
  return out;
}

class GgufImport : public ::testing::TestWithParam<Case> {};

// Dequantised (--weights f32), the imported model is the exported one with each matrix
// rounded as its GGUF type rounds: the same logits up to float reassociation. Kept compact
// (the default), Q8_0 and BF16 matrices are the file's bytes.
TEST_P(GgufImport, LoadsWithTheExportedModelsLogits) {
  const Case& c = GetParam();
  auto src = create_model(c.cfg, 5);
  GgufWriter w;
  std::set<std::string> compact;  // the tensors the file holds in c.type
  const auto written = export_gguf(*src, c.cfg, c.type, w, &compact);
  test::TempDir dir;
  const std::string path = dir / "model.gguf";
  w.write(path);

  // The reference: the source model holding exactly the values the file decodes to.
  auto ref = create_model(c.cfg, 5);
  ref->visit_params([&](const std::string& n, Var& v, ParamKind) {
    v.value().copy_from(Tensor::from(v.shape(), written.at(n)));
  });
  const std::vector<float> want = logits(*ref);

  GgufModel wide = read_gguf_model(path, WeightFormat::F32);
  EXPECT_EQ(wide.arch, c.cfg["model_type"]);
  EXPECT_EQ(model_weight_format(*wide.model), WeightFormat::F32);
  EXPECT_LT(max_diff(logits(*wide.model), want), 2e-4) << "dequantised";

  GgufModel kept = read_gguf_model(path);
  const WeightFormat expect = c.type == test::kGQ8_0   ? WeightFormat::Int8
                              : c.type == test::kGBF16 ? WeightFormat::BF16
                                                       : WeightFormat::F32;
  EXPECT_EQ(kept.weights, expect);
  EXPECT_EQ(model_weight_format(*kept.model), expect);
  EXPECT_LT(max_diff(logits(*kept.model), want), 2e-3) << "kept as stored";
  if (expect != WeightFormat::F32) {
    // Bit for bit: widening the kept matrices gives the decoded values exactly (matrices
    // the file holds in f32, with rows too short for Q8_0 blocks, are converted instead).
    kept.model->visit_params([&](const std::string& n, Var& v, ParamKind kind) {
      if (!is_compact_candidate(v, kind) || !compact.count(n)) return;
      EXPECT_NE(v.value().dtype(), DType::F32) << n;
      std::vector<float> want_values = written.at(n);
      EXPECT_EQ(to_f32(v.value()).to_vector(), want_values) << n;
    });
  }
  // And through the CLI's files: save, load, same logits.
  save_model(dir / "out", *kept.model);
  auto back = load_model(dir / "out");
  EXPECT_EQ(logits(*back), logits(*kept.model));
}

INSTANTIATE_TEST_SUITE_P(Archs, GgufImport, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

// A byte-level BPE vocabulary in GGUF form becomes a tokenizer.json that merges by rank and
// splits out the control token.
TEST(GgufTokenizer, Gpt2VocabularyBecomesTokenizerJson) {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) {
    const uint32_t cp = byte_to_unicode()[b];
    std::string s;
    if (cp < 0x80) s += static_cast<char>(cp);
    else s += static_cast<char>(0xC0 | (cp >> 6)), s += static_cast<char>(0x80 | (cp & 0x3F));
    tokens.push_back(s);
  }
  tokens.insert(tokens.end(), {"\xC4\xA0t", "he", "\xC4\xA0the", "<|endoftext|>"});
  std::vector<int32_t> types(tokens.size(), 1);
  types.back() = 3;
  GgufWriter w;
  w.str("general.architecture", "llama");
  w.str("tokenizer.ggml.model", "gpt2");
  w.str("tokenizer.ggml.pre", "gpt-2");
  w.strings("tokenizer.ggml.tokens", tokens);
  w.i32s("tokenizer.ggml.token_type", types);
  w.strings("tokenizer.ggml.merges", {"\xC4\xA0 t", "h e", "\xC4\xA0t he"});
  test::TempDir dir;
  w.write(dir / "t.gguf");
  GgufFile f(dir / "t.gguf");
  std::vector<std::string> notes;
  const auto files = gguf_tokenizer_files(f, notes);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].first, "tokenizer.json");
  const std::string p = dir.write("tokenizer.json", files[0].second);
  auto tok = BpeTokenizer::from_file(p);
  EXPECT_EQ(tok->encode(" the the<|endoftext|>x"),
            (std::vector<int32_t>{258, 258, 259, 'x'}));
  EXPECT_EQ(tok->decode_token(258), " the");
  EXPECT_EQ(tok->stop_ids(), std::vector<int32_t>{259});

  // A split regex other than GPT-2's is reported, not silently mis-tokenised.
  GgufWriter w2;
  w2.str("tokenizer.ggml.model", "gpt2");
  w2.str("tokenizer.ggml.pre", "llama-bpe");
  w2.strings("tokenizer.ggml.tokens", tokens);
  w2.strings("tokenizer.ggml.merges", {"h e"});
  w2.write(dir / "t2.gguf");
  GgufFile f2(dir / "t2.gguf");
  notes.clear();
  EXPECT_TRUE(gguf_tokenizer_files(f2, notes).empty());
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("llama-bpe"), std::string::npos) << notes[0];
}

// A SentencePiece vocabulary (pieces, scores, types) written as llama.cpp stores it becomes
// a tokenizer.model that encodes as the original.
TEST(GgufTokenizer, SentencePieceVocabularyBecomesTokenizerModel) {
  test::TempDir dir;
  std::string text;
  for (int i = 0; i < 40; ++i)
    text += "In the beginning God created the heaven and the earth, verse " +
            std::to_string(i * 7) + ".\nAnd the earth was without form, and void.\n";
  const std::string input = dir.write("corpus.txt", text);
  const std::unordered_map<std::string, std::string> args = {
      {"input", input},          {"model_prefix", dir / "sp"},
      {"model_type", "bpe"},     {"vocab_size", "300"},
      {"byte_fallback", "true"}, {"character_coverage", "1.0"},
      {"normalization_rule_name", "identity"}, {"add_dummy_prefix", "true"},
      {"remove_extra_whitespaces", "false"},   {"hard_vocab_limit", "false"},
      {"num_threads", "1"},      {"minloglevel", "2"},
      {"unk_id", "0"}, {"bos_id", "1"}, {"eos_id", "2"}, {"pad_id", "-1"}};
  ASSERT_TRUE(sentencepiece::SentencePieceTrainer::Train(args).ok());
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.Load(dir / "sp.model").ok());
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  for (int i = 0; i < sp.GetPieceSize(); ++i) {
    tokens.push_back(sp.IdToPiece(i));
    scores.push_back(sp.GetScore(i));
    types.push_back(sp.IsUnknown(i) ? 2 : sp.IsControl(i) ? 3 : sp.IsByte(i) ? 6 : sp.IsUnused(i) ? 5 : 1);
  }
  GgufWriter w;
  w.str("tokenizer.ggml.model", "llama");
  w.strings("tokenizer.ggml.tokens", tokens);
  w.f32s("tokenizer.ggml.scores", scores);
  w.i32s("tokenizer.ggml.token_type", types);
  w.u32("tokenizer.ggml.bos_token_id", 1);
  w.u32("tokenizer.ggml.eos_token_id", 2);
  w.u32("tokenizer.ggml.unknown_token_id", 0);
  w.write(dir / "t.gguf");
  GgufFile f(dir / "t.gguf");
  std::vector<std::string> notes;
  const auto files = gguf_tokenizer_files(f, notes);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].first, "tokenizer.model");
  auto got = SentencePieceTokenizer::from_file(dir.write("tokenizer.model", files[0].second));
  auto orig = SentencePieceTokenizer::from_file(dir / "sp.model");
  for (const std::string s : {"In the beginning", "  two  spaces, verse 1234.\n", "caf\xC3\xA9 \xE2\x9C\x93"})
    EXPECT_EQ(got->encode(s), orig->encode(s)) << s;
  EXPECT_EQ(got->encode_prompt("the earth"), orig->encode_prompt("the earth"));
}

// Each structural fault is an error naming the file and the fault, never a crash.
TEST(GgufFiles, BadFilesAreRefusedWithTheReason) {
  test::TempDir dir;
  auto src = create_model(mamba_cfg(), 1);
  auto make = [&] {
    GgufWriter w;
    export_gguf(*src, mamba_cfg(), test::kGQ8_0, w);
    return w;
  };
  auto expect_error = [&](const std::string& name, const std::string& bytes, const std::string& words) {
    const std::string path = dir.write(name, bytes);
    try {
      read_gguf_model(path);
      ADD_FAILURE() << name << ": loaded; expected an error with '" << words << "'";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(words), std::string::npos) << name << ": " << msg;
      EXPECT_NE(msg.find(path), std::string::npos) << name << ": " << msg;
    }
  };
  const std::string good = make().bytes();
  ASSERT_NO_THROW(read_gguf_model(dir.write("good.gguf", good)));
  expect_error("empty.gguf", "", "too short");
  expect_error("magic.gguf", "GGUX" + good.substr(4), "not a GGUF file");
  {
    GgufWriter w = make();
    w.version = 7;
    expect_error("version.gguf", w.bytes(), "version 7");
  }
  for (size_t cut : {size_t{30}, size_t{200}, good.size() / 3, good.size() - 100})
    expect_error("cut" + std::to_string(cut) + ".gguf", good.substr(0, cut), "truncated");
  std::string huge = good;
  const uint64_t many = uint64_t{1} << 40;
  std::memcpy(&huge[8], &many, 8);
  expect_error("count.gguf", huge, "corrupt header");
  {
    GgufWriter w = make();
    w.set_type("blk.0.ssm_in.weight", 12);
    expect_error("q4k.gguf", w.bytes(), "Q4_K");
  }
  {
    GgufWriter w = make();
    w.shift_offset("output_norm.weight", 1 << 20);
    expect_error("offset.gguf", w.bytes(), "past the end");
  }
  {
    GgufWriter w = make();
    w.shift_offset("output_norm.weight", 4);
    expect_error("align.gguf", w.bytes(), "not aligned");
  }
  {
    GgufWriter w = make();
    w.drop("blk.1.ssm_out.weight");
    expect_error("missing.gguf", w.bytes(), "missing tensor 'blk.1.ssm_out.weight'");
  }
  {
    GgufWriter w;
    w.str("general.architecture", "gptj");
    w.tensor("token_embd.weight", {4, 32}, std::vector<float>(128, 0.5f), test::kGF32);
    expect_error("arch.gguf", w.bytes(), "architecture 'gptj' is not supported");
  }
  {
    GgufWriter w = make();
    w.tensor("blk.7.ssm_d", {128}, std::vector<float>(128, 1.0f), test::kGF32);
    expect_error("extra.gguf", w.bytes(), "unexpected tensor 'blk.7.ssm_d'");
  }
  {
    auto bad = create_model(mamba_cfg(), 1);
    bad->visit_params([](const std::string& n, Var& v, ParamKind) {
      if (n == "backbone.norm_f.weight") v.value().data()[3] = std::nanf("");
    });
    GgufWriter w;
    export_gguf(*bad, mamba_cfg(), test::kGF32, w);
    expect_error("nan.gguf", w.bytes(), "finite");
  }
}

}  // namespace
}  // namespace pf
