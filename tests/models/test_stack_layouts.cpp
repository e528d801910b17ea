// Published layouts on the shared stack: flash-linear-attention RetNet's fused and separate
// MLPs, retention configuration (decays, prefill forms), and mamba_ssm's hybrid attention
// layer (fused in_proj, conv, partial rotary) against a double-precision reference.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "autograd/ops.h"
#include "base/rng.h"
#include "common/error_of.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "models/core/decoder_lm.h"
#include "models/lm.h"
#include "models/model_test_util.h"

namespace pf {
namespace {

using nlohmann::json;

json fla_retnet(const char* layout) {
  json j = {{"model_type", "retnet"},
            {"hidden_size", 32},
            {"num_hidden_layers", 2},
            {"num_heads", 4},
            {"vocab_size", 64},
            {"intermediate_size", 48},
            {"tie_word_embeddings", false}};
  if (layout) j["mlp_layout"] = layout;
  return j;
}

std::vector<std::pair<std::string, Tensor>> params_of(LanguageModel& m) {
  std::vector<std::pair<std::string, Tensor>> out;
  m.visit_params([&](const std::string& n, Var& p, ParamKind) { out.emplace_back(n, p.value()); });
  return out;
}

Tensor logits(LanguageModel& m, const std::vector<int32_t>& ids) {
  NoGradScope ng;
  return m.forward(ids, 1, static_cast<int64_t>(ids.size()), ForwardOptions{}).value();
}

// A directory as flash-linear-attention writes it: its config has no mlp_layout key.
void write_fla_dir(const std::string& dir, const json& cfg,
                   const std::vector<std::pair<std::string, Tensor>>& tensors) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.json") << cfg.dump();
  write_safetensors(dir + "/model.safetensors", tensors, {{"format", "pt"}});
}

TEST(FlaRetNet, BothMlpLayoutsLoadComputeAlikeAndSaveAsLoaded) {
  auto separate = create_model(fla_retnet("separate"), 3);
  const std::vector<int32_t> ids = {1, 7, 3, 60, 2, 9, 11};
  const Tensor want = logits(*separate, ids);
  // Current fla: gate_proj, up_proj, down_proj.
  test::TempDir dir;
  write_fla_dir(dir / "new", fla_retnet(nullptr), params_of(*separate));
  auto a = load_model(dir / "new");
  EXPECT_EQ(a->config_json()["mlp_layout"], "separate");
  EXPECT_EQ(logits(*a, ids).to_vector(), want.to_vector());
  // fla before February 2025: one gate_proj of 2F rows, gate rows first, then up.
  std::vector<std::pair<std::string, Tensor>> fused;
  std::map<std::string, Tensor> byname;
  for (auto& [n, t] : params_of(*separate)) byname[n] = t;
  for (auto& [n, t] : params_of(*separate)) {
    if (n.find("mlp.up_proj") != std::string::npos) continue;
    if (n.find("mlp.gate_proj") != std::string::npos) {
      const Tensor up = byname[std::string(n).replace(n.find("gate_proj"), 9, "up_proj")];
      Tensor both = Tensor::empty({2 * t.size(0), t.size(1)});
      both.slice(0, 0, t.size(0)).copy_from(t);
      both.slice(0, t.size(0), 2 * t.size(0)).copy_from(up);
      fused.emplace_back(n, both);
    } else {
      fused.emplace_back(n, t);
    }
  }
  write_fla_dir(dir / "old", fla_retnet(nullptr), fused);
  auto b = load_model(dir / "old");
  EXPECT_EQ(b->config_json()["mlp_layout"], "fused");
  const Tensor got = logits(*b, ids);
  for (int64_t i = 0; i < got.numel(); ++i) EXPECT_NEAR(got.data()[i], want.data()[i], 1e-5);
  // Each saves in the layout it was loaded from.
  save_model(dir / "old-saved", *b);
  SafetensorsFile f(dir / "old-saved/model.safetensors");
  EXPECT_TRUE(f.has("model.layers.0.mlp.gate_proj.weight"));
  EXPECT_FALSE(f.has("model.layers.0.mlp.up_proj.weight"));
  save_model(dir / "new-saved", *a);
  EXPECT_TRUE(SafetensorsFile(dir / "new-saved/model.safetensors")
                  .has("model.layers.0.mlp.up_proj.weight"));
}

json torchscale_retnet() {
  return {{"model_type", "retnet"},
          {"hidden_size", 32},
          {"num_hidden_layers", 2},
          {"num_heads", 4},
          {"vocab_size", 64},
          {"intermediate_size", 48},
          {"retention_variant", "torchscale"},
          {"retention_chunk", 4},
          {"head_norm_eps", 0.0}};
}

TEST(RetentionConfig, DecaysBySchemeOrListAndTheirMemoryInInfo) {
  json j = torchscale_retnet();
  auto dflt = create_model(j, 1);
  EXPECT_EQ(dflt->config_json()["retention_decay"], "torchscale");
  bool found = false;
  for (const std::string& l : dflt->describe())
    if (l.find("1/(1-gamma)): 32 64 128 256") != std::string::npos) found = true;  // 1-2^(-5-h)
  EXPECT_TRUE(found);
  j["retention_decay"] = "paper";  // 1 - exp(linspace(log 1/32, log 1/512, 4))
  found = false;
  for (const std::string& l : create_model(j, 1)->describe())
    if (l.find("32 81 203 512") != std::string::npos) found = true;
  EXPECT_TRUE(found);
  j["retention_decay"] = {0.5, 0.75, 0.875, 0.9375};
  auto listed = create_model(j, 1);
  EXPECT_EQ(listed->config_json()["retention_decay"], j["retention_decay"]);
  j["retention_decay"] = {0.5, 0.75};
  EXPECT_NE(test::error_of([&] { create_model(j, 1); }).find("2 decays for 4 heads"),
            std::string::npos);
  j["retention_decay"] = "steep";
  EXPECT_NE(test::error_of([&] { create_model(j, 1); }).find("'steep'"), std::string::npos);
  j = torchscale_retnet();
  j["retention_prefill"] = "sideways";
  EXPECT_NE(test::error_of([&] { create_model(j, 1); }).find("retention_prefill"),
            std::string::npos);
}

// With head-norm eps 0 the three forms agree; each prefill then continues identically.
TEST(RetentionConfig, PrefillFormsAgree) {
  const std::vector<int32_t> ids = {4, 8, 15, 16, 23, 42, 5, 1, 9, 33, 2};
  std::vector<Tensor> out;
  for (const char* form : {"chunkwise", "parallel", "recurrent"}) {
    json j = torchscale_retnet();
    j["retention_prefill"] = form;
    auto m = create_model(j, 5);
    auto s = m->new_session(64);
    Tensor a = s->forward(ids.data(), 9, true).clone();  // (9, V)
    Tensor b = s->forward(&ids[9], 2, true).clone();     // continues from the state
    out.push_back(a);
    out.push_back(b);
  }
  for (size_t f = 2; f < out.size(); ++f)
    for (int64_t i = 0; i < out[f].numel(); ++i)
      ASSERT_NEAR(out[f].data()[i], out[f % 2].data()[i], 2e-4) << "form " << f / 2;
}

// mamba_ssm's MHA layer: x + out_proj(attn(rope(conv(in_proj(rmsnorm(x)))))), computed
// here in double precision from the weights of a one-layer hybrid.
TEST(Mamba2Attn, AttentionLayerMatchesADoublePrecisionReference) {
  const int64_t d = 16, H = 4, KV = 2, hd = 8, Kc = 3, rot = 4, V = 32, T = 6;
  json cfg = {{"d_model", d},
              {"n_layer", 1},
              {"vocab_size", V},
              {"ssm_cfg", {{"layer", "Mamba2"}, {"headdim", 8}, {"d_state", 8}}},
              {"attn_layer_idx", {0}},
              {"attn_cfg",
               {{"causal", true},
                {"d_conv", Kc},
                {"head_dim", hd},
                {"num_heads", H},
                {"num_heads_kv", KV},
                {"qkv_proj_bias", false},
                {"out_proj_bias", false},
                {"rotary_emb_dim", rot}}}};
  auto m = create_model(cfg, 9);
  EXPECT_EQ(m->arch(), "hybrid");
  std::map<std::string, Tensor> w;
  for (auto& [n, t] : params_of(*m)) w[n] = t;
  const std::string p = "backbone.layers.0.";
  const Tensor E = w["backbone.embedding.weight"], in = w[p + "mixer.in_proj.weight"],
               cw = w[p + "mixer.conv1d.weight"], cb = w[p + "mixer.conv1d.bias"],
               out = w[p + "mixer.out_proj.weight"];
  ASSERT_EQ(in.shape(), (Shape{hd * (H + 2 * KV), d}));
  const std::vector<int32_t> ids = {3, 1, 4, 1, 5, 9};
  auto rms = [](std::vector<double> v) {  // weights are the initial ones
    double s = 0;
    for (double x : v) s += x * x;
    const double r = 1.0 / std::sqrt(s / v.size() + 1e-5);
    for (double& x : v) x *= r;
    return v;
  };
  const int64_t Q = hd * (H + 2 * KV);
  std::vector<std::vector<double>> x(T, std::vector<double>(d)), qkv(T, std::vector<double>(Q));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < d; ++i) x[t][i] = E.at({ids[t], i});
  for (int64_t t = 0; t < T; ++t) {
    const auto h = rms(x[t]);
    for (int64_t c = 0; c < Q; ++c) {
      double a = 0;
      for (int64_t i = 0; i < d; ++i) a += in.at({c, i}) * h[i];
      qkv[t][c] = a;
    }
  }
  std::vector<std::vector<double>> conv(T, std::vector<double>(Q));  // causal, no activation
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < Q; ++c) {
      double a = cb.at({c});
      for (int64_t k = 0; k < Kc; ++k) {
        const int64_t s = t - (Kc - 1) + k;
        if (s >= 0) a += cw.at({c, 0, k}) * qkv[s][c];
      }
      conv[t][c] = a;
    }
  auto rope = [&](std::vector<double>& v, int64_t off, int64_t t) {  // first rot dims, rotate-half
    for (int64_t i = 0; i < rot / 2; ++i) {
      const double ang = t * std::pow(10000.0, -2.0 * i / rot);
      const double a = v[off + i], b = v[off + i + rot / 2];
      v[off + i] = a * std::cos(ang) - b * std::sin(ang);
      v[off + i + rot / 2] = b * std::cos(ang) + a * std::sin(ang);
    }
  };
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t h = 0; h < H; ++h) rope(conv[t], h * hd, t);
    for (int64_t g = 0; g < KV; ++g) rope(conv[t], H * hd + g * hd, t);
  }
  const Tensor got = logits(*m, ids);  // (T, Vp)
  const Tensor nf = w["backbone.norm_f.weight"];
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> att(H * hd, 0.0);
    for (int64_t h = 0; h < H; ++h) {
      const int64_t g = h / (H / KV);
      std::vector<double> sc(t + 1);
      double mx = -1e300, z = 0;
      for (int64_t s = 0; s <= t; ++s) {
        double a = 0;
        for (int64_t i = 0; i < hd; ++i) a += conv[t][h * hd + i] * conv[s][H * hd + g * hd + i];
        sc[s] = a / std::sqrt(double(hd));
        mx = std::max(mx, sc[s]);
      }
      for (double& v : sc) z += (v = std::exp(v - mx));
      for (int64_t s = 0; s <= t; ++s)
        for (int64_t i = 0; i < hd; ++i)
          att[h * hd + i] += sc[s] / z * conv[s][(H + KV) * hd + g * hd + i];
    }
    std::vector<double> y = x[t];
    for (int64_t o = 0; o < d; ++o)
      for (int64_t i = 0; i < H * hd; ++i) y[o] += out.at({o, i}) * att[i];
    const auto yn = rms(y);
    for (int64_t v = 0; v < V; ++v) {
      double l = 0;
      for (int64_t i = 0; i < d; ++i) l += E.at({v, i}) * yn[i] * nf.at({i});
      EXPECT_NEAR(got.at({t, v}), l, 1e-4) << "t " << t << " v " << v;
    }
  }
}

}  // namespace
}  // namespace pf
