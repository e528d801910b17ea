// Causal depthwise conv1d: forward against a naive double reference written here (with
// and without incoming state, L < K, K = 1), the outgoing state, the one-token step,
// chunked continuation, and the backward against finite differences through the op.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <sstream>
#include <tuple>
#include <vector>

#include "autograd/ops_ssm.h"
#include "base/error.h"
#include "base/rng.h"
#include "gradcheck.h"
#include "kernels/cpu/conv1d_causal.h"

namespace {

std::vector<float> random_vec(int64_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  pf::Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = rng.uniform(lo, hi);
  return v;
}

::testing::AssertionResult all_close(const std::vector<float>& got, const std::vector<double>& want,
                                     double tol) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "size " << got.size() << " vs " << want.size();
  int bad = 0;
  std::ostringstream msg;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(got[i] - want[i]) <= tol * (1.0 + std::fabs(want[i])))) {
      if (bad < 6) msg << "\n  [" << i << "] got " << got[i] << " want " << want[i];
      ++bad;
    }
  if (bad)
    return ::testing::AssertionFailure() << bad << " of " << got.size() << " differ:" << msg.str();
  return ::testing::AssertionSuccess();
}
std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// y and the outgoing state from the definition: the sequence is [state_in (K), x (L)].
void naive_conv(int64_t B, int64_t L, int64_t C, int64_t K, const float* x, const float* w,
                const float* bias, const float* state_in, std::vector<double>& y,
                std::vector<double>& state_out) {
  y.assign(B * L * C, 0.0);
  state_out.assign(B * C * K, 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      std::vector<double> seq(K + L, 0.0);
      for (int64_t k = 0; k < K; ++k) seq[k] = state_in ? state_in[(b * C + c) * K + k] : 0.0;
      for (int64_t t = 0; t < L; ++t) seq[K + t] = x[(b * L + t) * C + c];
      for (int64_t t = 0; t < L; ++t) {
        double acc = bias ? bias[c] : 0.0;
        for (int64_t k = 0; k < K; ++k) acc += double(w[c * K + k]) * seq[t + 1 + k];
        y[(b * L + t) * C + c] = acc;
      }
      for (int64_t k = 0; k < K; ++k) state_out[(b * C + c) * K + k] = seq[L + k];
    }
}

}  // namespace

TEST(Conv1dCausal, ForwardMatchesNaiveReference) {
  for (auto [B, L, C, K] : {std::tuple<int64_t, int64_t, int64_t, int64_t>{2, 10, 37, 4},
                            {1, 1, 16, 4},
                            {2, 3, 5, 4},
                            {1, 130, 64, 4},
                            {2, 7, 9, 1},
                            {1, 5, 33, 2}}) {
    SCOPED_TRACE(::testing::Message() << "B=" << B << " L=" << L << " C=" << C << " K=" << K);
    const auto x = random_vec(B * L * C, 1), w = random_vec(C * K, 2), bias = random_vec(C, 3);
    const auto state_in = random_vec(B * C * K, 4);
    for (bool with_state : {false, true}) {
      const float* sin = with_state ? state_in.data() : nullptr;
      std::vector<double> want_y, want_s;
      naive_conv(B, L, C, K, x.data(), w.data(), bias.data(), sin, want_y, want_s);
      std::vector<float> y(B * L * C, NAN), state_out(B * C * K, NAN);
      pf::cpu::conv1d_causal_fwd(B, L, C, K, x.data(), w.data(), bias.data(), sin, y.data(),
                                 state_out.data());
      EXPECT_TRUE(all_close(y, want_y, 1e-6));
      EXPECT_TRUE(all_close(state_out, want_s, 0.0));
    }
    // No bias; state_out written over state_in in place.
    std::vector<double> want_y, want_s;
    naive_conv(B, L, C, K, x.data(), w.data(), nullptr, state_in.data(), want_y, want_s);
    std::vector<float> y(B * L * C), state = state_in;
    pf::cpu::conv1d_causal_fwd(B, L, C, K, x.data(), w.data(), nullptr, state.data(), y.data(),
                               state.data());
    EXPECT_TRUE(all_close(y, want_y, 1e-6));
    EXPECT_TRUE(all_close(state, want_s, 0.0));
  }
}

TEST(Conv1dCausal, StepLoopAndChunksMatchOneCall) {
  const int64_t B = 2, L = 20, C = 37, K = 4;
  const auto x = random_vec(B * L * C, 10), w = random_vec(C * K, 11), bias = random_vec(C, 12);
  const auto state_in = random_vec(B * C * K, 13);
  std::vector<float> y(B * L * C), state_out(B * C * K);
  pf::cpu::conv1d_causal_fwd(B, L, C, K, x.data(), w.data(), bias.data(), state_in.data(), y.data(),
                             state_out.data());

  // Token by token.
  std::vector<float> state = state_in, ys(B * L * C), xt(B * C), yt(B * C);
  for (int64_t t = 0; t < L; ++t) {
    for (int64_t b = 0; b < B; ++b) std::copy_n(x.begin() + (b * L + t) * C, C, xt.begin() + b * C);
    pf::cpu::conv1d_causal_step(B, C, K, xt.data(), w.data(), bias.data(), state.data(), yt.data());
    for (int64_t b = 0; b < B; ++b)
      std::copy_n(yt.begin() + b * C, C, ys.begin() + (b * L + t) * C);
  }
  EXPECT_TRUE(all_close(ys, to_double(y), 1e-6));
  EXPECT_TRUE(all_close(state, to_double(state_out), 0.0));

  // Two chunks of 7 and 13 steps, the state carried between them in place.
  state = state_in;
  for (auto [t0, t1] : {std::pair<int64_t, int64_t>{0, 7}, {7, 20}}) {
    const int64_t n = t1 - t0;
    std::vector<float> xc(B * n * C), yc(B * n * C);
    for (int64_t b = 0; b < B; ++b)
      std::copy_n(x.begin() + (b * L + t0) * C, n * C, xc.begin() + b * n * C);
    pf::cpu::conv1d_causal_fwd(B, n, C, K, xc.data(), w.data(), bias.data(), state.data(),
                               yc.data(), state.data());
    for (int64_t b = 0; b < B; ++b)
      std::copy_n(yc.begin() + b * n * C, n * C, ys.begin() + (b * L + t0) * C);
  }
  EXPECT_TRUE(all_close(ys, to_double(y), 1e-6));
  EXPECT_TRUE(all_close(state, to_double(state_out), 0.0));
}

TEST(Conv1dCausal, OpBackwardMatchesFiniteDifferences) {
  using pf::test_util::random_var;
  for (auto [B, L, C, K] : {std::tuple<int64_t, int64_t, int64_t, int64_t>{2, 9, 19, 4},
                            {1, 3, 5, 4},
                            {1, 70, 17, 3}}) {
    SCOPED_TRACE(::testing::Message() << "B=" << B << " L=" << L << " C=" << C << " K=" << K);
    std::vector<pf::Var> in = {random_var({B, L, C}, 20), random_var({C, K}, 21),
                               random_var({C}, 22)};
    EXPECT_TRUE(pf::test_util::gradcheck(
        in, [](const std::vector<pf::Var>& v) { return pf::conv1d_causal(v[0], v[1], v[2]); }));
    std::vector<pf::Var> nb = {random_var({B, L, C}, 23), random_var({C, K}, 24)};
    EXPECT_TRUE(pf::test_util::gradcheck(nb, [](const std::vector<pf::Var>& v) {
      return pf::conv1d_causal(v[0], v[1], pf::Var());
    }));
  }
}

TEST(Conv1dCausal, BackwardIsDeterministicAndAccumulates) {
  const int64_t B = 3, L = 200, C = 40, K = 4;
  const auto x = random_vec(B * L * C, 30), w = random_vec(C * K, 31),
             dy = random_vec(B * L * C, 32);
  std::vector<float> dx1(B * L * C, 0.5f), dw1(C * K, 0.5f), db1(C, 0.5f);
  std::vector<float> dx2 = dx1, dw2 = dw1, db2 = db1;
  pf::cpu::conv1d_causal_bwd(B, L, C, K, x.data(), w.data(), dy.data(), dx1.data(), dw1.data(),
                             db1.data());
  pf::cpu::conv1d_causal_bwd(B, L, C, K, x.data(), w.data(), dy.data(), dx2.data(), dw2.data(),
                             db2.data());
  EXPECT_EQ(dx1, dx2);
  EXPECT_EQ(dw1, dw2);
  EXPECT_EQ(db1, db2);
  // dbias = 0.5 + sum over (b, t) of dy.
  for (int64_t c = 0; c < C; ++c) {
    double s = 0.5;
    for (int64_t r = 0; r < B * L; ++r) s += dy[r * C + c];
    EXPECT_NEAR(db1[c], s, 1e-4);
  }
}

TEST(Conv1dCausal, OpRejectsBadShapes) {
  using pf::test_util::random_var;
  const auto x = random_var({2, 5, 8}, 1);
  EXPECT_THROW(pf::conv1d_causal(x, random_var({7, 4}, 2), pf::Var()), pf::Error);
  EXPECT_THROW(pf::conv1d_causal(x, random_var({8, 4}, 3), random_var({7}, 4)), pf::Error);
  EXPECT_THROW(pf::conv1d_causal(random_var({5, 8}, 5), random_var({8, 4}, 6), pf::Var()),
               pf::Error);
  EXPECT_NO_THROW(pf::conv1d_causal(x, random_var({8, 4}, 7), random_var({8}, 8)));
}
