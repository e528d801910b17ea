// Perceiver AR: the latents' causality, gradients against finite differences, the cached
// session against recomputing the window at every step, chunked and one-by-one feeding,
// saved states, checkpoints and a short run that learns.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "autograd/ops.h"
#include "base/rng.h"
#include "infer/generate.h"
#include "io/checkpoint.h"
#include "kernels/cpu/xent.h"
#include "models/lm.h"
#include "models/model_test_util.h"
#include "models/perceiver/perceiver_ar.h"
#include "train/adamw.h"

namespace pf {
namespace {

using nlohmann::json;

json tiny_config(int64_t L = 24, int64_t M = 8, int64_t layers = 3) {
  return {{"model_type", "perceiver_ar"}, {"hidden_size", 32},        {"intermediate_size", 48},
          {"num_hidden_layers", layers},  {"num_attention_heads", 4}, {"num_key_value_heads", 2},
          {"context_length", L},          {"num_latents", M},         {"vocab_size", 64},
          {"rotary_fraction", 0.5}};
}

std::unique_ptr<PerceiverAR> make(const json& c, uint64_t seed = 7) {
  auto m = create_model(c, seed);
  auto* p = dynamic_cast<PerceiverAR*>(m.get());
  EXPECT_NE(p, nullptr);
  m.release();
  return std::unique_ptr<PerceiverAR>(p);
}

std::vector<int32_t> tokens(int64_t n, int64_t vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> t(n);
  for (auto& v : t) v = static_cast<int32_t>(rng.below(vocab));
  return t;
}

float max_diff(const float* a, const float* b, int64_t n) {
  float m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

TEST(PerceiverAr, CountsParametersAndDescribesItself) {
  auto m = make(tiny_config());
  EXPECT_EQ(m->num_params(), config_param_count(m->config_json()));
  EXPECT_EQ(m->arch(), "perceiver-ar");
  EXPECT_EQ(m->loss_rows(24), 8);
  EXPECT_EQ(m->loss_rows(5), 5);
  EXPECT_EQ(m->describe().at(0).substr(0, 15), "layers:     XAA");
}

TEST(PerceiverAr, LatentsAreCausalAndSeeTheWholePrefix) {
  auto m = make(tiny_config());
  NoGradScope ng;
  const int64_t T = 24, M = 8, V = 64;
  auto ids = tokens(T, V, 1);
  const Tensor base = m->forward(ids, 1, T, {}).value().clone();  // (M, V)
  ASSERT_EQ(base.size(0), M);
  // A change at input position 3 (not a latent) reaches every latent.
  auto a = ids;
  a[3] = (a[3] + 1) % V;
  const Tensor ya = m->forward(a, 1, T, {}).value();
  for (int64_t i = 0; i < M; ++i)
    EXPECT_GT(max_diff(ya.data() + i * V, base.data() + i * V, V), 1e-6) << "latent " << i;
  // A change at the latent at position T-M+4 leaves the latents before it untouched.
  auto b = ids;
  b[T - M + 4] = (b[T - M + 4] + 1) % V;
  const Tensor yb = m->forward(b, 1, T, {}).value();
  for (int64_t i = 0; i < M; ++i) {
    const float d = max_diff(yb.data() + i * V, base.data() + i * V, V);
    if (i < 4)
      EXPECT_EQ(d, 0.0f) << "latent " << i << " saw a later token";
    else
      EXPECT_GT(d, 1e-6) << "latent " << i;
  }
}

TEST(PerceiverAr, BatchedWindowsEqualEachAlone) {
  auto m = make(tiny_config());
  NoGradScope ng;
  const int64_t T = 24, M = 8, V = 64;
  auto ids = tokens(3 * T, V, 2);
  const Tensor all = m->forward(ids, 3, T, {}).value().clone();
  for (int64_t b = 0; b < 3; ++b) {
    std::vector<int32_t> one(ids.begin() + b * T, ids.begin() + (b + 1) * T);
    const Tensor y = m->forward(one, 1, T, {}).value();
    EXPECT_LT(max_diff(y.data(), all.data() + b * M * V, M * V), 1e-5) << "sequence " << b;
  }
}

TEST(PerceiverAr, GradientsMatchFiniteDifferences) {
  auto m = make(tiny_config(12, 4, 2), 11);
  const int64_t B = 2, T = 12, M = 4;
  auto ids = tokens(B * T, 64, 3);
  std::vector<int32_t> tg = tokens(B * M, 64, 4);
  std::vector<std::pair<std::string, Var>> params;
  m->visit_params([&](const std::string& n, Var& p, ParamKind) { params.emplace_back(n, p); });
  // Larger weights than the init, so every path carries a gradient well above f32 noise.
  Rng rng(5);
  for (auto& [n, p] : params)
    for (int64_t i = 0; i < p.value().numel(); ++i) p.value().data()[i] += rng.uniform(-0.2f, 0.2f);
  auto loss = [&]() {
    return static_cast<double>(cross_entropy(m->forward(ids, B, T, {}), tg).value().data()[0]);
  };
  for (auto& [n, p] : params) p.zero_grad();
  {
    Tape tape;
    TapeScope scope(tape);
    tape.backward(cross_entropy(m->forward(ids, B, T, {}), tg));
  }
  NoGradScope ng;
  int checked = 0;
  for (auto& [name, p] : params) {
    const int64_t n = p.value().numel();
    for (int64_t s = 0; s < 3; ++s) {
      const int64_t i = (s * 7919 + 13) % n;
      float& w = p.value().data()[i];
      const float orig = w, eps = 1e-2f;
      w = orig + eps;
      const double lp = loss();
      w = orig - eps;
      const double lm = loss();
      w = orig;
      const double num = (lp - lm) / (2.0 * eps);
      const double ana = p.grad().data()[i];
      EXPECT_NEAR(ana, num, 2e-3 + 3e-2 * std::fabs(num)) << name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 30);
}

// The logits of the token at position t, recomputed by a full forward over the window and
// latents the session's schedule gives that position.
std::vector<float> recomputed(PerceiverAR& m, const std::vector<int32_t>& ids, int64_t t) {
  int64_t win = 0, lat = 0;
  perceiver_ar_window(t, m.config().context_length, m.config().num_latents, &win, &lat);
  std::vector<int32_t> w(ids.begin() + win, ids.begin() + t + 1);
  const int64_t T = t + 1 - win, k = t + 1 - lat;
  NoGradScope ng;
  const Tensor y = m.forward_window(w, 1, T, k, win, {}).value();  // (k, V)
  const int64_t V = m.vocab_size();
  return std::vector<float>(y.data() + (k - 1) * V, y.data() + k * V);
}

TEST(PerceiverAr, CachedGenerationMatchesRecomputingTheWindowAtEveryStep) {
  // L 24, M 8: re-encodings every 5 tokens once past 8, the window slides from position 21.
  auto m = make(tiny_config());
  const int64_t n = 90, V = 64;
  auto ids = tokens(n, V, 6);
  auto s = m->new_session(1);
  float worst = 0;
  for (int64_t t = 0; t < n; ++t) {
    const Tensor y = s->forward(&ids[t], 1, false);  // (1, V)
    const std::vector<float> want = recomputed(*m, ids, t);
    worst = std::max(worst, max_diff(y.data(), want.data(), V));
  }
  EXPECT_LT(worst, 1e-5);
  int64_t win = 0, lat = 0;
  perceiver_ar_window(n - 1, 24, 8, &win, &lat);
  EXPECT_GT(win, 40) << "the test must slide the window well past its start";
}

TEST(PerceiverAr, ChunkedFeedingEqualsOneByOneAndPrefillSkipsAhead) {
  auto m = make(tiny_config());
  const int64_t n = 70, V = 64;
  auto ids = tokens(n, V, 8);
  auto one = m->new_session(1);
  Tensor ref = Tensor::empty({n, V});
  for (int64_t t = 0; t < n; ++t) ref.slice(0, t, t + 1).copy_from(one->forward(&ids[t], 1, false));
  // Chunks of uneven sizes, all logits.
  auto chunked = m->new_session(1);
  int64_t t = 0;
  for (int64_t len : {5, 1, 13, 7, 30, 14}) {
    const Tensor y = chunked->forward(&ids[t], len, true);
    EXPECT_LT(max_diff(y.data(), ref.data() + t * V, len * V), 1e-5) << "chunk at " << t;
    t += len;
  }
  ASSERT_EQ(t, n);
  // A prompt fed at once (last logits only) reaches the same state.
  auto fast = m->new_session(1);
  const Tensor last = fast->forward(ids.data(), 60, false);
  EXPECT_LT(max_diff(last.data(), ref.data() + 59 * V, V), 1e-5);
  for (int64_t u = 60; u < n; ++u) {
    const Tensor y = fast->forward(&ids[u], 1, false);
    EXPECT_LT(max_diff(y.data(), ref.data() + u * V, V), 1e-5) << "token " << u;
  }
}

TEST(PerceiverAr, SavedStateContinuesBitExactly) {
  auto m = make(tiny_config());
  auto ids = tokens(60, 64, 9);
  auto a = m->new_session(1);
  a->forward(ids.data(), 37, false);
  auto b = m->new_session(1);
  std::vector<std::pair<std::string, Tensor>> saved;
  for (auto& [n, t] : a->export_state()) saved.emplace_back(n, t.clone());
  b->import_state(saved, a->position());
  for (int64_t t = 37; t < 60; ++t) {
    Tensor x = a->forward(&ids[t], 1, false), y = b->forward(&ids[t], 1, false);
    ASSERT_EQ(std::memcmp(x.data(), y.data(), x.numel() * sizeof(float)), 0) << "token " << t;
  }
  // A state for another position is refused with a message, not misread.
  auto c = m->new_session(1);
  EXPECT_ANY_THROW(c->import_state(saved, 36));
}

TEST(PerceiverAr, StateIsBoundedByTheWindow) {
  auto m = make(tiny_config());
  EXPECT_EQ(m->state_bytes(24), m->state_bytes(100000));
  EXPECT_LT(m->state_bytes(8), m->state_bytes(24));
}

TEST(PerceiverAr, EvaluationSlidesTheWindowLikeGeneration) {
  auto m = make(tiny_config());
  auto ids = tokens(80, 64, 10);
  std::vector<float> lp;
  const EvalResult r = evaluate_tokens(*m, ids, 24, &lp);
  EXPECT_EQ(r.predicted, 79);
  auto s = m->new_session(1);
  for (int64_t t = 0; t + 1 < 80; ++t) {
    const Tensor y = s->forward(&ids[t], 1, false);
    std::vector<float> l(64);
    cpu::log_softmax(1, 64, y.data(), l.data());
    EXPECT_NEAR(lp[t], l[ids[t + 1]], 1e-5) << "token " << t;
  }
}

TEST(PerceiverAr, CheckpointsRoundTripBitForBit) {
  auto m = make(tiny_config());
  test::TempDir dir;
  save_model(dir.str(), *m);
  auto back = load_model(dir.str());
  EXPECT_EQ(back->arch(), "perceiver-ar");
  EXPECT_EQ(back->config_json(), m->config_json());
  std::vector<Tensor> a, b;
  m->visit_params([&](const std::string&, Var& p, ParamKind) { a.push_back(p.value()); });
  back->visit_params([&](const std::string&, Var& p, ParamKind) { b.push_back(p.value()); });
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_EQ(std::memcmp(a[i].data(), b[i].data(), a[i].numel() * sizeof(float)), 0);
}

TEST(PerceiverAr, RejectsBadConfigs) {
  auto c = tiny_config();
  c["num_latents"] = 30;  // more latents than the window
  EXPECT_ANY_THROW(create_model(c, 1));
  c = tiny_config();
  c.erase("context_length");
  EXPECT_ANY_THROW(create_model(c, 1));
  c = tiny_config();
  c["rotary_fraction"] = 0.0;
  EXPECT_ANY_THROW(create_model(c, 1));
}

TEST(PerceiverAr, AShortRunLearns) {
  auto m = make(tiny_config(32, 8, 2));
  std::vector<int32_t> in, tg;
  const int32_t phrase[8] = {3, 14, 15, 9, 26, 5, 35, 8};
  for (int b = 0; b < 2; ++b)
    for (int t = 0; t < 32; ++t) in.push_back(phrase[(t + b) % 8]);
  for (int b = 0; b < 2; ++b)
    for (int t = 24; t < 32; ++t) tg.push_back(phrase[(t + b + 1) % 8]);
  std::vector<std::pair<std::string, Var>> params;
  std::vector<ParamKind> kinds;
  m->visit_params([&](const std::string& n, Var& p, ParamKind k) {
    params.emplace_back(n, p);
    kinds.push_back(k);
  });
  AdamW opt(AdamWConfig{}, params, kinds);
  double first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    for (auto& [n, p] : params) p.zero_grad();
    Tape tape;
    double loss;
    {
      TapeScope scope(tape);
      Var l = cross_entropy(m->forward(in, 2, 32, ForwardOptions{}), tg);
      loss = l.value().data()[0];
      tape.backward(l);
    }
    opt.step(3e-3);
    if (step == 0) first = loss;
    last = loss;
  }
  EXPECT_LT(last, 0.5 * first) << "loss " << first << " -> " << last;
}

}  // namespace
}  // namespace pf

namespace pf {
namespace {

TEST(SlidingEval, StrideScoresEveryTokenOnceWithTheLongerContext) {
  auto m = create_model(test::tiny_llama_config(2), 3);
  const auto ids = tokens(100, 64, 12);
  std::vector<float> lp;
  const EvalResult r = evaluate_tokens(*m, ids, 32, &lp, 8);
  EXPECT_EQ(r.predicted, 99);
  // Token 60 (predicting ids[61]) is scored by the window [32, 64): recompute it directly.
  NoGradScope ng;
  std::vector<int32_t> in(ids.begin() + 32, ids.begin() + 64);
  const Tensor y = m->forward(in, 1, 32, {}).value();
  std::vector<float> l(256);
  cpu::log_softmax(1, 256, y.data() + 28 * 256, l.data());
  EXPECT_NEAR(lp[60], l[ids[61]], 1e-5);
  // The first window scores everything in it, as independent windows do.
  std::vector<float> lp0;
  evaluate_tokens(*m, ids, 32, &lp0);
  for (int t = 0; t < 32; ++t) EXPECT_EQ(lp[t], lp0[t]) << t;
  EXPECT_ANY_THROW(evaluate_tokens(*m, ids, 32, nullptr, 33));
}

}  // namespace
}  // namespace pf
