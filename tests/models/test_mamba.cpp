// Mamba and Mamba-2 models: parallel forward = recurrent steps, prefill + steps = full
// forward, SSD chunk independence, both published layouts in every dtype, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "autograd/tape.h"
#include "base/error.h"
#include "io/checkpoint.h"
#include "io/config_json.h"
#include "models/lm.h"
#include "models/model_test_util.h"
#include "tensor/dtype_convert.h"

namespace pf {
namespace {

nlohmann::json tiny_mamba(int version) {
  nlohmann::json j = {{"model_type", version == 2 ? "mamba2" : "mamba"},
                      {"hidden_size", 32},
                      {"num_hidden_layers", 2},
                      {"vocab_size", 256},
                      {"state_size", version == 2 ? 16 : 8},
                      {"conv_kernel", 4},
                      {"expand", 2},
                      {"tie_word_embeddings", true}};
  if (version == 2) {
    j["head_dim"] = 16;  // 4 heads
    j["n_groups"] = 2;
    j["chunk_size"] = 8;
  }
  return j;
}

std::vector<int32_t> some_tokens(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> t(n);
  for (auto& v : t) v = static_cast<int32_t>(rng.below(256));
  return t;
}

// max |a - b| / max(1, max |b|) over two (rows, V) blocks.
double rel_diff(const float* a, const float* b, int64_t n) {
  double num = 0, den = 1;
  for (int64_t i = 0; i < n; ++i) {
    num = std::max(num, static_cast<double>(std::fabs(a[i] - b[i])));
    den = std::max(den, static_cast<double>(std::fabs(b[i])));
  }
  return num / den;
}

class MambaForms : public ::testing::TestWithParam<int> {};

TEST_P(MambaForms, ParallelForwardEqualsRecurrentSteps) {
  auto m = create_model(tiny_mamba(GetParam()), 3);
  const int64_t T = 37, V = m->vocab_size();
  auto toks = some_tokens(T, 5);
  Tensor full;
  {
    NoGradScope ng;
    full = m->forward(toks, 1, T, ForwardOptions{}).value();  // (T, V)
  }
  auto s = m->new_session(T);
  for (int64_t t = 0; t < T; ++t) {
    Tensor step = s->forward(&toks[t], 1, false);
    EXPECT_LE(rel_diff(step.data(), full.data() + t * V, V), 1e-5) << "position " << t;
  }
}

TEST_P(MambaForms, PrefillThenStepsEqualsFullForward) {
  auto m = create_model(tiny_mamba(GetParam()), 4);
  const int64_t T = 40, V = m->vocab_size(), k = 23;
  auto toks = some_tokens(T, 6);
  Tensor full;
  {
    NoGradScope ng;
    full = m->forward(toks, 1, T, ForwardOptions{}).value();
  }
  auto s = m->new_session(T);
  Tensor pre = s->forward(toks.data(), k, true);  // (k, V)
  EXPECT_LE(rel_diff(pre.data(), full.data(), k * V), 1e-5);
  for (int64_t t = k; t < T; ++t) {
    Tensor step = s->forward(&toks[t], 1, false);
    EXPECT_LE(rel_diff(step.data(), full.data() + t * V, V), 1e-5) << "position " << t;
  }
  // A second prefill chunk continues the state exactly like steps do.
  auto s2 = m->new_session(T);
  s2->forward(toks.data(), 10, false);
  Tensor rest = s2->forward(toks.data() + 10, T - 10, true);
  EXPECT_LE(rel_diff(rest.data(), full.data() + 10 * V, (T - 10) * V), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Versions, MambaForms, ::testing::Values(1, 2),
                         [](const auto& info) { return "mamba" + std::to_string(info.param); });

TEST(Mamba2, ResultsDoNotDependOnChunkSize) {
  const int64_t T = 45;
  auto toks = some_tokens(T, 8);
  std::vector<Tensor> outs;
  for (int chunk : {1, 8, 64}) {
    nlohmann::json cfg = tiny_mamba(2);
    cfg["chunk_size"] = chunk;
    auto m = create_model(cfg, 9);  // same seed: same weights
    NoGradScope ng;
    outs.push_back(m->forward(toks, 1, T, ForwardOptions{}).value());
  }
  EXPECT_LE(rel_diff(outs[0].data(), outs[2].data(), outs[0].numel()), 1e-5);
  EXPECT_LE(rel_diff(outs[1].data(), outs[2].data(), outs[0].numel()), 1e-5);
}

TEST(Mamba, StateIsConstantInContext) {
  auto m = create_model(tiny_mamba(1), 1);
  EXPECT_EQ(m->state_bytes(128), m->state_bytes(1 << 20));
  // d_inner * (d_conv + d_state) floats per layer.
  EXPECT_EQ(m->state_bytes(1), 2 * 64 * (4 + 8) * 4);
}

std::vector<float> all_params(LanguageModel& m) {
  std::vector<float> v;
  m.visit_params([&](const std::string&, Var& p, ParamKind) {
    for (float x : p.value().to_vector()) v.push_back(x);
  });
  return v;
}

// Writes m's tensors under its own names in `dtype`, with config `cfg`.
void write_dir(const std::string& dir, LanguageModel& m, const nlohmann::json& cfg, DType dtype,
               const std::string& drop = "") {
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.json") << cfg.dump();
  std::vector<std::pair<std::string, Tensor>> ts;
  m.visit_params([&](const std::string& name, Var& p, ParamKind) {
    if (name != drop) ts.emplace_back(name, p.value());
  });
  write_safetensors(dir + "/model.safetensors", ts, {{"format", "pt"}}, dtype);
}

float rounded(float v, DType dt) {
  if (dt == DType::BF16) return bf16_to_f32(f32_to_bf16(v));
  if (dt == DType::F16) return f16_to_f32(f32_to_f16(v));
  return v;
}

// state-spaces layout: no model_type, d_model/n_layer/ssm_cfg, padded vocabulary.
nlohmann::json state_spaces_config(int version) {
  nlohmann::json ssm = {{"d_state", 8}};
  if (version == 2)
    ssm = {{"layer", "Mamba2"}, {"d_state", 16}, {"headdim", 16}, {"chunk_size", 8}};
  return {{"d_model", 32},          {"n_layer", 2},
          {"vocab_size", 250},      {"ssm_cfg", ssm},
          {"rms_norm", true},       {"residual_in_fp32", true},
          {"fused_add_norm", true}, {"pad_vocab_size_multiple", 8},
          {"tie_embeddings", true}};
}

TEST(MambaCheckpoint, BothLayoutsInEveryDtype) {
  for (int version : {1, 2})
    for (bool ss : {true, false})
      for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
        SCOPED_TRACE(std::string("version ") + std::to_string(version) +
                     (ss ? " state-spaces " : " hf ") + dtype_name(dt));
        nlohmann::json cfg = ss ? state_spaces_config(version) : tiny_mamba(version);
        auto m = create_model(cfg, 11);
        EXPECT_EQ(m->arch(), version == 2 ? "mamba2" : "mamba");
        test::TempDir dir;
        write_dir(dir / "ckpt", *m, cfg, dt);
        SafetensorsFile f(dir / "ckpt/model.safetensors");
        EXPECT_TRUE(f.has(ss ? "backbone.embedding.weight" : "backbone.embeddings.weight"));
        auto loaded = load_model(dir / "ckpt");
        std::vector<float> want = all_params(*m), got = all_params(*loaded);
        for (float& v : want) v = rounded(v, dt);
        EXPECT_EQ(want, got);
        // Saving writes the same layout back.
        save_model(dir / "again", *loaded);
        nlohmann::json again = read_json_file(dir / "again/config.json");
        EXPECT_EQ(again.contains("model_type"), !ss);
        SafetensorsFile g(dir / "again/model.safetensors");
        EXPECT_TRUE(g.has(ss ? "backbone.embedding.weight" : "backbone.embeddings.weight"));
      }
}

TEST(MambaCheckpoint, PadsTheVocabulary) {
  nlohmann::json cfg = state_spaces_config(1);
  cfg["vocab_size"] = 50277;
  cfg["d_model"] = 16;
  cfg["n_layer"] = 1;
  auto m = create_model(cfg, 1);
  EXPECT_EQ(m->vocab_size(), 50280);
  EXPECT_EQ(m->config_json()["vocab_size"], 50277);
  int64_t rows = 0;
  m->visit_params([&](const std::string& n, Var& p, ParamKind) {
    if (n == "backbone.embedding.weight") rows = p.shape()[0];
  });
  EXPECT_EQ(rows, 50280);
}

TEST(MambaCheckpoint, MissingTensorAndWrongShapeAreNamed) {
  auto m = create_model(tiny_mamba(1), 2);
  test::TempDir dir;
  write_dir(dir / "a", *m, tiny_mamba(1), DType::F32, "backbone.layers.1.mixer.A_log");
  try {
    load_model(dir / "a");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing tensor 'backbone.layers.1.mixer.A_log'"),
              std::string::npos)
        << e.what();
  }
  nlohmann::json bigger = tiny_mamba(1);
  bigger["state_size"] = 16;  // the file has d_state 8
  write_dir(dir / "b", *m, bigger, DType::F32);
  try {
    load_model(dir / "b");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("x_proj.weight' has shape [18, 64], expected [34, 64]"),
              std::string::npos)
        << e.what();
  }
  nlohmann::json broken = tiny_mamba(2);
  broken.erase("hidden_size");
  EXPECT_THROW(create_model(broken, 1), Error);
}

}  // namespace
}  // namespace pf
