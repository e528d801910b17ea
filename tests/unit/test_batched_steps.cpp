// Kernels of the multi-sequence cached forward: step kernels over B rows whose states sit at
// arbitrary slots equal B one-row steps; RoPE with a position per row and partial rotary
// against a double reference; linear_fwd's few-row paths against a naive product.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "base/rng.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_decode.h"
#include "kernels/cpu/conv1d_causal.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/retention.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/selective_scan.h"
#include "kernels/cpu/ssd.h"

using namespace pf;

namespace {

std::vector<float> rand_vec(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = rng.uniform(lo, hi);
  return v;
}

// Rows b = 0..B-1 use slots {4, 0, 2} of a 5-slot state; the other slots must not change.
const std::vector<int64_t> kSlots = {4, 0, 2};
constexpr int64_t kB = 3, kS = 5;

// Runs `batched` once over all rows and `single(b, state_of_slot)` per row on a copy, and
// compares outputs and states exactly.
template <class Batched, class Single>
void expect_same(int64_t per_slot, int64_t out_per_row, Batched batched, Single single) {
  std::vector<float> state = rand_vec(kS * per_slot, 3), ref_state = state;
  std::vector<float> out(kB * out_per_row), ref_out(kB * out_per_row);
  batched(state.data(), out.data());
  for (int64_t b = 0; b < kB; ++b)
    single(b, ref_state.data() + kSlots[b] * per_slot, ref_out.data() + b * out_per_row);
  EXPECT_EQ(out, ref_out);
  EXPECT_EQ(state, ref_state);
}

TEST(BatchedSteps, ConvStepWithSlots) {
  const int64_t C = 37, K = 4;
  auto x = rand_vec(kB * C, 1), w = rand_vec(C * K, 2), bias = rand_vec(C, 4);
  expect_same(
      C * K, C,
      [&](float* st, float* y) {
        cpu::conv1d_causal_step(kB, C, K, x.data(), w.data(), bias.data(), st, y, kSlots.data());
      },
      [&](int64_t b, float* st, float* y) {
        cpu::conv1d_causal_step(1, C, K, x.data() + b * C, w.data(), bias.data(), st, y);
      });
}

TEST(BatchedSteps, SelectiveScanStepWithSlots) {
  const int64_t D = 40, N = 16;
  auto u = rand_vec(kB * D, 1), dt = rand_vec(kB * D, 2), bias = rand_vec(D, 3),
       A = rand_vec(D * N, 4), Bt = rand_vec(kB * N, 5), Ct = rand_vec(kB * N, 6),
       Dk = rand_vec(D, 7);
  expect_same(
      D * N, D,
      [&](float* h, float* y) {
        cpu::selective_scan_step(kB, D, N, u.data(), dt.data(), bias.data(), A.data(), Bt.data(),
                                 Ct.data(), Dk.data(), h, y, kSlots.data());
      },
      [&](int64_t b, float* h, float* y) {
        cpu::selective_scan_step(1, D, N, u.data() + b * D, dt.data() + b * D, bias.data(),
                                 A.data(), Bt.data() + b * N, Ct.data() + b * N, Dk.data(), h, y);
      });
}

TEST(BatchedSteps, SsdStepWithSlots) {
  const int64_t H = 4, P = 8, G = 2, N = 16;
  auto x = rand_vec(kB * H * P, 1), dt = rand_vec(kB * H, 2), bias = rand_vec(H, 3),
       A = rand_vec(H, 4), Bt = rand_vec(kB * G * N, 5), Ct = rand_vec(kB * G * N, 6),
       Dk = rand_vec(H, 7);
  expect_same(
      H * P * N, H * P,
      [&](float* st, float* y) {
        cpu::ssd_step(cpu::SsdShape{kB, 1, H, P, G, N}, x.data(), dt.data(), bias.data(), A.data(),
                      Bt.data(), Ct.data(), Dk.data(), st, y, kSlots.data());
      },
      [&](int64_t b, float* st, float* y) {
        cpu::ssd_step(cpu::SsdShape{1, 1, H, P, G, N}, x.data() + b * H * P, dt.data() + b * H,
                      bias.data(), A.data(), Bt.data() + b * G * N, Ct.data() + b * G * N,
                      Dk.data(), st, y);
      });
}

TEST(BatchedSteps, RetentionStepWithSlotsAndPositions) {
  const int64_t H = 3, dk = 8, dv = 16;
  auto q = rand_vec(kB * H * dk, 1), k = rand_vec(kB * H * dk, 2), v = rand_vec(kB * H * dv, 3);
  const std::vector<float> gamma = {0.9f, 0.97f, 0.999f};
  const std::vector<int64_t> pos = {0, 17, 3};
  expect_same(
      H * dk * dv, H * dv,
      [&](float* st, float* o) {
        cpu::retention_step(cpu::RetShape{kB, 1, H, dk, dv}, q.data(), k.data(), v.data(),
                            gamma.data(), st, pos.data(), o, kSlots.data());
      },
      [&](int64_t b, float* st, float* o) {
        cpu::retention_step(cpu::RetShape{1, 1, H, dk, dv}, q.data() + b * H * dk,
                            k.data() + b * H * dk, v.data() + b * H * dv, gamma.data(), st, pos[b],
                            o);
      });
}

// Rotate-half over the first rot dims of each head with frequencies base^(-2i/rot).
std::vector<double> ref_partial_rope(const std::vector<float>& x, int64_t rows, int64_t H,
                                     int64_t hd, const std::vector<int64_t>& pos, int64_t rot,
                                     double base) {
  std::vector<double> y(x.begin(), x.end());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < rot / 2; ++i) {
        const double a = pos[r] * std::pow(base, -2.0 * i / rot);
        const int64_t o = (r * H + h) * hd;
        const double x1 = x[o + i], x2 = x[o + i + rot / 2];
        y[o + i] = x1 * std::cos(a) - x2 * std::sin(a);
        y[o + i + rot / 2] = x2 * std::cos(a) + x1 * std::sin(a);
      }
  return y;
}

TEST(BatchedSteps, RopeRowsAndPartialRotaryMatchReference) {
  const int64_t rows = 4, H = 2, hd = 16;
  const std::vector<int64_t> pos = {0, 9, 100, 3};
  for (int64_t rot : {0, 8, 16}) {
    auto x = rand_vec(rows * H * hd, 5);
    std::vector<float> y(x.size());
    const cpu::RopeStyle st{10000.0f, false, false, rot};
    cpu::rope_fwd_rows(rows, H, hd, pos.data(), st, x.data(), y.data());
    const auto want = ref_partial_rope(x, rows, H, hd, pos, rot == 0 ? hd : rot, 10000.0);
    for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], want[i], 2e-5) << "rot " << rot;
    // The table path (one position run per call) agrees with the per-row path.
    std::vector<float> z(hd * H);
    cpu::rope_fwd(1, 1, H, hd, pos[2], st, x.data() + 2 * H * hd, z.data());
    for (int64_t i = 0; i < H * hd; ++i) EXPECT_FLOAT_EQ(z[i], y[2 * H * hd + i]);
  }
}

// Decode rows of three sequences with different cache lengths, grouped-query heads: each row
// equals naive attention of its last query over its own cache.
TEST(BatchedSteps, AttentionDecodeMatchesNaivePerSequence) {
  const int64_t H = 4, KV = 2, hd = 12;
  const std::vector<int64_t> tk = {1, 7, 30};
  std::vector<std::vector<float>> k, v;
  for (size_t r = 0; r < tk.size(); ++r) {
    k.push_back(rand_vec(tk[r] * KV * hd, 20 + r));
    v.push_back(rand_vec(tk[r] * KV * hd, 30 + r));
  }
  const int64_t rows = static_cast<int64_t>(tk.size());
  auto q = rand_vec(rows * H * hd, 40);
  std::vector<const float*> kp, vp;
  for (int64_t r = 0; r < rows; ++r) kp.push_back(k[r].data()), vp.push_back(v[r].data());
  std::vector<float> out(rows * H * hd);
  cpu::attention_decode(cpu::AttnDecodeShape{rows, H, KV, hd, 1.0f / std::sqrt(12.0f)}, q.data(),
                        kp.data(), vp.data(), tk.data(), out.data());
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<float> want(H * hd);
    const cpu::AttnShape s = cpu::attn_shape(1, 1, tk[r], H, KV, hd, tk[r] - 1);
    cpu::attention_naive(s, q.data() + r * H * hd, k[r].data(), v[r].data(), want.data());
    for (int64_t i = 0; i < H * hd; ++i) EXPECT_NEAR(out[r * H * hd + i], want[i], 1e-5) << r;
  }
}

TEST(BatchedSteps, LinearFewRowsMatchesNaiveProduct) {
  const int64_t N = 70, K = 45;
  auto W = rand_vec(N * K, 9);
  for (int64_t M : {1, 2, 5, 8, 9, 13, 16, 33, 64, 65}) {
    auto x = rand_vec(M * K, 10 + M);
    std::vector<float> y(M * N, 0.5f);
    cpu::linear_fwd(M, N, K, x.data(), W.data(), 0.0f, y.data());
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k) acc += double(x[m * K + k]) * W[n * K + k];
        EXPECT_NEAR(y[m * N + n], acc, 1e-4) << "M " << M;
      }
  }
}

}  // namespace
