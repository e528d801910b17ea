// Perceiver IO and the sequence-backbone classifiers: the forward against a naive
// double-precision reference written from the paper's equations, gradients through the
// whole model against finite differences, batched = one at a time, and weight sharing.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "autograd/ops.h"
#include "base/rng.h"
#include "models/classify/classifier.h"
#include "models/perceiver/perceiver_io.h"

namespace pf {
namespace {

using Mat = std::vector<std::vector<double>>;  // rows x cols

nlohmann::json small_config() {
  return {{"model_type", "perceiver_io"}, {"input_length", 7}, {"input_channels", 3},
          {"num_labels", 4},              {"num_latents", 5},  {"d_latents", 8},
          {"num_blocks", 2},              {"num_self_attends_per_block", 2},
          {"num_self_attention_heads", 2}, {"num_cross_attention_heads", 1},
          {"cross_attend_repeats", 3},     {"share_weights", true}};
}

struct Weights {
  std::map<std::string, Tensor> t;
  Mat m(const std::string& name) const {
    const Tensor& x = t.at(name);
    const int64_t r = x.dim() == 1 ? 1 : x.size(0), c = x.numel() / r;
    Mat out(r, std::vector<double>(c));
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < c; ++j) out[i][j] = x.data()[i * c + j];
    return out;
  }
  std::vector<double> v(const std::string& name) const { return m(name)[0]; }
};

Mat lin(const Mat& x, const Mat& W) {  // x (n, k), W (o, k) -> (n, o)
  Mat y(x.size(), std::vector<double>(W.size(), 0.0));
  for (size_t i = 0; i < x.size(); ++i)
    for (size_t o = 0; o < W.size(); ++o)
      for (size_t k = 0; k < W[o].size(); ++k) y[i][o] += x[i][k] * W[o][k];
  return y;
}
Mat rms(const Mat& x, const std::vector<double>& w, double eps) {
  Mat y = x;
  for (auto& row : y) {
    double ss = 0;
    for (double v : row) ss += v * v;
    const double s = 1.0 / std::sqrt(ss / row.size() + eps);
    for (size_t j = 0; j < row.size(); ++j) row[j] *= s * w[j];
  }
  return y;
}
Mat add(const Mat& a, const Mat& b) {
  Mat y = a;
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = 0; j < a[i].size(); ++j) y[i][j] += b[i][j];
  return y;
}
// Full (unmasked) multi-head attention of queries hq over keys/values from hkv.
Mat mha(const Weights& w, const std::string& p, const Mat& hq, const Mat& hkv, int64_t H) {
  const Mat q = lin(hq, w.m(p + "q_proj.weight")), k = lin(hkv, w.m(p + "k_proj.weight")),
            v = lin(hkv, w.m(p + "v_proj.weight"));
  const size_t hd = q[0].size() / H;
  Mat a(q.size(), std::vector<double>(q[0].size(), 0.0));
  for (int64_t h = 0; h < H; ++h)
    for (size_t i = 0; i < q.size(); ++i) {
      std::vector<double> s(k.size());
      double mx = -1e300, sum = 0;
      for (size_t j = 0; j < k.size(); ++j) {
        s[j] = 0;
        for (size_t d = 0; d < hd; ++d) s[j] += q[i][h * hd + d] * k[j][h * hd + d];
        s[j] /= std::sqrt(double(hd));
        mx = std::max(mx, s[j]);
      }
      for (double& x : s) sum += (x = std::exp(x - mx));
      for (size_t j = 0; j < k.size(); ++j)
        for (size_t d = 0; d < hd; ++d) a[i][h * hd + d] += s[j] / sum * v[j][h * hd + d];
    }
  return lin(a, w.m(p + "o_proj.weight"));
}
Mat mlp(const Weights& w, const std::string& p, const Mat& x, double eps) {
  const Mat h = rms(x, w.v(p + "mlp_norm.weight"), eps);
  Mat g = lin(h, w.m(p + "mlp.gate_proj.weight"));
  const Mat u = lin(h, w.m(p + "mlp.up_proj.weight"));
  for (size_t i = 0; i < g.size(); ++i)
    for (size_t j = 0; j < g[i].size(); ++j) g[i][j] = g[i][j] / (1 + std::exp(-g[i][j])) * u[i][j];
  return add(x, lin(g, w.m(p + "mlp.down_proj.weight")));
}
Mat layer(const Weights& w, const std::string& p, const Mat& q, const Mat* kv, int64_t H,
          bool residual, double eps) {
  const Mat hq = rms(q, w.v(p + "attn_norm.weight"), eps);
  const Mat hkv = kv ? rms(*kv, w.v(p + "kv_norm.weight"), eps) : hq;
  const Mat a = mha(w, p + "attention.", hq, hkv, H);
  return mlp(w, p, residual ? add(q, a) : a, eps);
}

// The model written out from the paper for one example x (N, C) -> logits (K).
std::vector<double> reference(const Weights& w, const nlohmann::json& c, const Mat& x) {
  const double eps = 1e-5;
  const Mat in = lin(x, w.m("input_proj.weight"));
  Mat z = w.m("latents");
  const int64_t R = c["cross_attend_repeats"], L = c["num_self_attends_per_block"],
                nb = c["num_blocks"], Hs = c["num_self_attention_heads"],
                Hc = c["num_cross_attention_heads"];
  for (int64_t r = 0; r < R; ++r) {
    const std::string p = "encoder." + std::to_string(r == 0 ? 0 : 1) + ".";  // shared after 0
    z = layer(w, p + "cross.", z, &in, Hc, true, eps);
    for (int64_t b = 0; b < nb; ++b)
      for (int64_t l = 0; l < L; ++l)
        z = layer(w, p + "self." + std::to_string(l) + ".", z, nullptr, Hs, true, eps);
  }
  Mat o = layer(w, "decoder.", w.m("decoder.query"), &z, Hc, false, eps);
  o = rms(o, w.v("final_norm.weight"), eps);
  return lin(o, w.m("classifier.weight"))[0];
}

Weights weights_of(Classifier& m) {
  Weights w;
  m.visit_params([&](const std::string& n, Var& p, ParamKind) { w.t[n] = p.value(); });
  return w;
}

// Norm weights away from 1 so the reference checks they are applied.
void perturb_norms(Classifier& m) {
  Rng rng(9);
  m.visit_params([&](const std::string&, Var& p, ParamKind k) {
    if (k != ParamKind::Norm) return;
    for (int64_t i = 0; i < p.value().numel(); ++i) p.data()[i] = rng.uniform(0.5f, 1.5f);
  });
}

TEST(PerceiverIO, ForwardMatchesNaiveReference) {
  const nlohmann::json cfg = small_config();
  auto m = create_classifier(cfg, 3);
  perturb_norms(*m);
  const Weights w = weights_of(*m);
  // Two encoder weight sets: the first cross-attend, then the shared one.
  EXPECT_TRUE(w.t.count("encoder.1.cross.attention.q_proj.weight"));
  EXPECT_FALSE(w.t.count("encoder.2.cross.attention.q_proj.weight"));
  const int64_t B = 3, N = 7, C = 3;
  Rng rng(4);
  Tensor x = Tensor::empty({B, N, C});
  for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = rng.uniform(-2.0f, 2.0f);
  Var logits = m->forward(Var(x), ForwardOptions{});
  ASSERT_EQ(logits.shape(), (Shape{B, 4}));
  for (int64_t b = 0; b < B; ++b) {
    Mat xb(N, std::vector<double>(C));
    for (int64_t i = 0; i < N; ++i)
      for (int64_t c = 0; c < C; ++c) xb[i][c] = x.data()[(b * N + i) * C + c];
    const std::vector<double> want = reference(w, cfg, xb);
    for (int64_t k = 0; k < 4; ++k)
      EXPECT_NEAR(logits.data()[b * 4 + k], want[k], 1e-4 + 1e-3 * std::abs(want[k]))
          << "example " << b << " class " << k;
  }
}

TEST(PerceiverIO, WithoutSharingEveryRepeatHasItsOwnWeights) {
  nlohmann::json cfg = small_config();
  cfg["share_weights"] = false;
  auto m = create_classifier(cfg, 3);
  const Weights w = weights_of(*m);
  EXPECT_TRUE(w.t.count("encoder.2.cross.attention.q_proj.weight"));
  auto shared = create_classifier(small_config(), 3);
  EXPECT_GT(m->num_params(), shared->num_params());
}

TEST(PerceiverIO, GradientsMatchFiniteDifferences) {
  nlohmann::json cfg = small_config();
  cfg["cross_attend_repeats"] = 2;
  cfg["num_blocks"] = 1;
  auto m = create_classifier(cfg, 5);
  perturb_norms(*m);
  Rng rng(6);
  Tensor x = Tensor::empty({2, 7, 3});
  for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = rng.uniform(-1.0f, 1.0f);
  const std::vector<int32_t> labels = {1, 3};
  auto loss_of = [&] {
    NoGradScope ng;
    return double(cross_entropy(m->forward(Var(x), ForwardOptions{}), labels).value().data()[0]);
  };
  std::map<std::string, Var> params;
  m->visit_params([&](const std::string& n, Var& p, ParamKind) {
    p.zero_grad();
    params[n] = p;
  });
  {
    Tape tape;
    TapeScope scope(tape);
    tape.backward(cross_entropy(m->forward(Var(x), ForwardOptions{}), labels));
  }
  int checked = 0;
  for (const char* name : {"input_proj.weight", "latents", "encoder.0.cross.attention.k_proj.weight",
                           "encoder.1.self.1.mlp.up_proj.weight", "decoder.query",
                           "decoder.kv_norm.weight", "classifier.weight"}) {
    Var p = params.at(name);
    for (int64_t i = 0; i < std::min<int64_t>(p.value().numel(), 6); ++i) {
      const int64_t e = (i * 7919) % p.value().numel();
      const float keep = p.data()[e];
      // Small step: the latents start near zero, so a step of 1e-2 moves their layer norm far
      // out of its linear range.
      const float h = 1e-3f;
      p.data()[e] = keep + h;
      const double up = loss_of();
      p.data()[e] = keep - h;
      const double down = loss_of();
      p.data()[e] = keep;
      const double num = (up - down) / (2 * h), ana = p.grad().data()[e];
      EXPECT_NEAR(ana, num, 2e-3 + 3e-2 * std::abs(num)) << name << "[" << e << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 30);
}

TEST(PerceiverIO, BatchedEqualsOneAtATime) {
  auto m = create_classifier(small_config(), 7);
  Rng rng(8);
  Tensor x = Tensor::empty({4, 7, 3});
  for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = rng.uniform(-1.0f, 1.0f);
  NoGradScope ng;
  Var all = m->forward(Var(x), ForwardOptions{});
  for (int64_t b = 0; b < 4; ++b) {
    Tensor one = Tensor::empty({1, 7, 3});
    std::copy_n(x.data() + b * 21, 21, one.data());
    Var y = m->forward(Var(one), ForwardOptions{});
    for (int64_t k = 0; k < 4; ++k) EXPECT_NEAR(y.data()[k], all.data()[b * 4 + k], 1e-5);
  }
}

TEST(PerceiverIO, BadConfigsAndInputsAreNamed) {
  nlohmann::json cfg = small_config();
  cfg["d_latents"] = 9;
  try {
    create_classifier(cfg, 1);
    FAIL() << "accepted d_latents 9 with 2 heads";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("d_latents"), std::string::npos) << e.what();
  }
  auto m = create_classifier(small_config(), 1);
  try {
    m->forward(Var(Tensor::empty({1, 6, 3})), ForwardOptions{});
    FAIL() << "accepted 6 inputs for input_length 7";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("(B, 7, 3)"), std::string::npos) << e.what();
  }
}

// Every sequence backbone as a classifier: batched = one at a time (no leak between
// examples through state), and the output depends on the input.
TEST(SequenceClassifier, EveryBackboneClassifiesBatchesAsSingles) {
  const std::vector<nlohmann::json> backbones = {
      {{"model_type", "llama"}, {"hidden_size", 16}, {"intermediate_size", 32},
       {"num_hidden_layers", 2}, {"num_attention_heads", 2}, {"vocab_size", 8},
       {"max_position_embeddings", 64}},
      {{"model_type", "mamba"}, {"hidden_size", 16}, {"num_hidden_layers", 2}, {"vocab_size", 8},
       {"state_size", 4}},
      {{"model_type", "retnet"}, {"hidden_size", 16}, {"intermediate_size", 32},
       {"num_hidden_layers", 2}, {"num_heads", 2}, {"vocab_size", 8}},
  };
  for (const auto& bb : backbones) {
    nlohmann::json cfg = {{"model_type", "sequence_classifier"}, {"backbone", bb},
                          {"input_length", 9}, {"input_channels", 3}, {"num_labels", 5}};
    std::unique_ptr<Classifier> m;
    try {
      m = create_classifier(cfg, 2);
    } catch (const Error& e) {
      FAIL() << bb.dump() << ": " << e.what();
    }
    Rng rng(3);
    Tensor x = Tensor::empty({3, 9, 3});
    for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = rng.uniform(-1.0f, 1.0f);
    NoGradScope ng;
    Var all = m->forward(Var(x), ForwardOptions{});
    ASSERT_EQ(all.shape(), (Shape{3, 5}));
    for (int64_t b = 0; b < 3; ++b) {
      Tensor one = Tensor::empty({1, 9, 3});
      std::copy_n(x.data() + b * 27, 27, one.data());
      Var y = m->forward(Var(one), ForwardOptions{});
      for (int64_t k = 0; k < 5; ++k)
        EXPECT_NEAR(y.data()[k], all.data()[b * 5 + k], 1e-4) << m->arch();
    }
    EXPECT_NE(all.data()[0], all.data()[5]) << m->arch() << ": two inputs, the same logits";
  }
}

}  // namespace
}  // namespace pf
