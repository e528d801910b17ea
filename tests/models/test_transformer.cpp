// Transformer: KV-cache decoding equals the full forward; checkpoints round-trip.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "autograd/tape.h"
#include "base/error.h"
#include "io/checkpoint.h"
#include "models/lm.h"
#include "models/model_test_util.h"
#include "models/transformer/transformer.h"
#include "tensor/dtype_convert.h"

namespace pf {
namespace {

std::vector<int32_t> some_tokens(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> t(n);
  for (auto& v : t) v = static_cast<int32_t>(rng.below(256));
  return t;
}

float max_abs_diff(const float* a, const float* b, int64_t n) {
  float m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

class KvCache : public ::testing::TestWithParam<int64_t> {};

TEST_P(KvCache, DecodeMatchesFullForward) {
  auto m = create_model(test::tiny_llama_config(GetParam()), 3);
  const int64_t T = 40, V = 256;
  auto toks = some_tokens(T, 11);
  Tensor full;
  {
    NoGradScope ng;
    full = m->forward(toks, 1, T, ForwardOptions{}).value();  // (T, V)
  }
  // Prefill 13 tokens, then one token at a time; every step's logits must match.
  auto s = m->new_session(64);
  Tensor pre = s->forward(toks.data(), 13, true);  // (13, V)
  EXPECT_LT(max_abs_diff(pre.data(), full.data(), 13 * V), 1e-4f);
  for (int64_t t = 13; t < T; ++t) {
    Tensor step = s->forward(&toks[t], 1, false);  // (1, V)
    EXPECT_LT(max_abs_diff(step.data(), full.data() + t * V, V), 1e-4f) << "position " << t;
  }
  EXPECT_EQ(s->position(), T);
}

INSTANTIATE_TEST_SUITE_P(KvHeads, KvCache, ::testing::Values(4, 2, 1));

TEST(Transformer, SessionRejectsOverflow) {
  auto m = create_model(test::tiny_llama_config(), 3);
  auto s = m->new_session(8);
  auto toks = some_tokens(9, 1);
  EXPECT_THROW(s->forward(toks.data(), 9, false), Error);
}

TEST(Transformer, CountsParameters) {
  auto m = create_model(test::tiny_llama_config(2, false), 3);
  // embed + head: 2*256*32; per layer: q 32*32, k,v 2*(16*32), o 32*32, mlp 3*32*48, 2 norms.
  const int64_t per_layer = 32 * 32 * 2 + 2 * 16 * 32 + 3 * 32 * 48 + 2 * 32;
  EXPECT_EQ(m->num_params(), 2 * 256 * 32 + 2 * per_layer + 32);
}

TEST(Checkpoint, SaveLoadRoundTripsBitExactly) {
  test::TempDir dir;
  auto m = create_model(test::tiny_llama_config(2, false), 5);
  save_model(dir / "m", *m);
  auto m2 = load_model(dir / "m");
  std::vector<std::vector<float>> a, b;
  m->visit_params(
      [&](const std::string&, Var& p, ParamKind) { a.push_back(p.value().to_vector()); });
  m2->visit_params(
      [&](const std::string&, Var& p, ParamKind) { b.push_back(p.value().to_vector()); });
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_EQ(0, std::memcmp(a[i].data(), b[i].data(), a[i].size() * 4)) << "param " << i;
  EXPECT_EQ(m->config_json(), m2->config_json());
}

// Writes a directory as a Hugging Face export would: its own config keys, lm_head
// present, tensors in the given dtype, and an extra buffer the engine must ignore.
void write_hf_dir(const std::string& dir, LanguageModel& m, DType dtype,
                  const std::string& drop = "", const std::string& reshape = "") {
  std::filesystem::create_directories(dir);
  nlohmann::json cfg = m.config_json();
  cfg["architectures"] = {"LlamaForCausalLM"};
  cfg["torch_dtype"] = dtype == DType::BF16 ? "bfloat16" : "float16";
  std::ofstream(dir + "/config.json") << cfg.dump();
  std::vector<std::pair<std::string, Tensor>> ts;
  m.visit_params([&](const std::string& name, Var& p, ParamKind) {
    if (name == drop) return;
    ts.emplace_back(name, name == reshape ? p.value().view({-1}) : p.value());
  });
  ts.emplace_back("model.layers.0.self_attn.rotary_emb.inv_freq", Tensor::zeros({4}));
  write_safetensors(dir + "/model.safetensors", ts, {{"format", "pt"}}, dtype);
}

TEST(Checkpoint, LoadsHalfPrecisionHuggingFaceLayouts) {
  auto m = create_model(test::tiny_llama_config(2, false), 9);
  for (DType dt : {DType::BF16, DType::F16}) {
    test::TempDir dir;
    write_hf_dir(dir / "hf", *m, dt);
    auto m2 = load_model(dir / "hf");
    std::vector<float> want, got;
    m->visit_params([&](const std::string&, Var& p, ParamKind) {
      for (float v : p.value().to_vector())
        want.push_back(dt == DType::BF16 ? bf16_to_f32(f32_to_bf16(v)) : f16_to_f32(f32_to_f16(v)));
    });
    m2->visit_params([&](const std::string&, Var& p, ParamKind) {
      for (float v : p.value().to_vector()) got.push_back(v);
    });
    ASSERT_EQ(want, got) << dtype_name(dt);
  }
}

TEST(Checkpoint, MissingTensorIsNamed) {
  auto m = create_model(test::tiny_llama_config(), 9);
  test::TempDir dir;
  write_hf_dir(dir / "hf", *m, DType::BF16, "model.layers.1.mlp.up_proj.weight");
  try {
    load_model(dir / "hf");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing tensor 'model.layers.1.mlp.up_proj.weight'"),
              std::string::npos)
        << e.what();
  }
}

TEST(Checkpoint, WrongShapeIsNamed) {
  auto m = create_model(test::tiny_llama_config(), 9);
  test::TempDir dir;
  write_hf_dir(dir / "hf", *m, DType::BF16, "", "model.layers.0.self_attn.q_proj.weight");
  try {
    load_model(dir / "hf");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers.0.self_attn.q_proj.weight"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("expected [32, 32]"), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, ConfigMissingKeyIsNamed) {
  auto m = create_model(test::tiny_llama_config(), 9);
  test::TempDir dir;
  save_model(dir / "m", *m);
  nlohmann::json cfg = m->config_json();
  cfg.erase("num_hidden_layers");
  std::ofstream(dir / "m/config.json") << cfg.dump();
  try {
    load_model(dir / "m");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing the key 'num_hidden_layers'"), std::string::npos)
        << e.what();
  }
  std::ofstream(dir / "m/config.json") << "{\"hidden_size\": 32,";
  EXPECT_THROW(load_model(dir / "m"), Error);
}

TEST(Checkpoint, LoadsShardedExport) {
  auto m = create_model(test::tiny_llama_config(2, false), 21);
  test::TempDir dir;
  std::filesystem::create_directories(dir / "sh");
  std::ofstream(dir / "sh/config.json") << m->config_json().dump();
  std::vector<std::pair<std::string, Tensor>> a, b;
  nlohmann::json map;
  m->visit_params([&](const std::string& name, Var& p, ParamKind) {
    const bool first = a.size() <= b.size();
    (first ? a : b).emplace_back(name, p.value());
    map[name] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  });
  write_safetensors(dir / "sh/model-00001-of-00002.safetensors", a);
  write_safetensors(dir / "sh/model-00002-of-00002.safetensors", b);
  std::ofstream(dir / "sh/model.safetensors.index.json")
      << nlohmann::json{{"weight_map", map}}.dump();
  auto m2 = load_model(dir / "sh");
  std::vector<float> want, got;
  m->visit_params([&](const std::string&, Var& p, ParamKind) {
    for (float v : p.value().to_vector()) want.push_back(v);
  });
  m2->visit_params([&](const std::string&, Var& p, ParamKind) {
    for (float v : p.value().to_vector()) got.push_back(v);
  });
  EXPECT_EQ(want, got);
  // An index that forgets a tensor names it.
  map.erase("model.norm.weight");
  std::ofstream(dir / "sh/model.safetensors.index.json")
      << nlohmann::json{{"weight_map", map}}.dump();
  try {
    load_model(dir / "sh");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'model.norm.weight' is not listed for this shard"),
              std::string::npos)
        << e.what();
  }
}

TEST(Checkpoint, RejectsLlamaVariantsItCannotCompute) {
  for (auto [key, value] : {std::pair<const char*, nlohmann::json>{
                                "rope_scaling", {{"type", "linear"}, {"factor", 2.0}}},
                            {"attention_bias", true},
                            {"hidden_act", "gelu"}}) {
    nlohmann::json cfg = test::tiny_llama_config();
    cfg[key] = value;
    try {
      create_model(cfg, 1);
      ADD_FAILURE() << key << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }
}

TEST(Checkpoint, TruncatedWeightsFileIsAnError) {
  auto m = create_model(test::tiny_llama_config(), 9);
  test::TempDir dir;
  save_model(dir / "m", *m);
  const std::string st = dir / "m/model.safetensors";
  std::filesystem::resize_file(st, std::filesystem::file_size(st) / 2);
  EXPECT_THROW(load_model(dir / "m"), Error);
  EXPECT_THROW(load_model(dir / "nonexistent"), Error);
}

}  // namespace
}  // namespace pf
