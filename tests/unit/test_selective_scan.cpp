// The fused Mamba-1 selective scan: forward against a naive double-precision recurrence
// written here (channel tails, d_state 5 / 16 / 33, L = 1), the initial/final state, the
// recurrent step, chunked continuation, the backward against finite differences (through
// the op and on the kernel with a nonzero h0), determinism, and backward memory.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "autograd/ops_ssm.h"
#include "base/error.h"
#include "base/memory_stats.h"
#include "base/rng.h"
#include "gradcheck.h"
#include "kernels/cpu/selective_scan.h"

using pf::cpu::ScanShape;

namespace {

std::vector<float> random_vec(int64_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  pf::Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = rng.uniform(lo, hi);
  return v;
}

// Inputs of one scan, drawn in realistic ranges (dt pre-activations mostly negative).
struct ScanInputs {
  ScanShape s;
  std::vector<float> u, dt, dt_bias, A_log, Bm, Cm, Dskip, h0;  // h0 (B, D, N)
  ScanInputs(ScanShape sh, uint64_t seed, float dt_lo = -4.0f, float dt_hi = 1.0f) : s(sh) {
    const int64_t BLD = s.B * s.L * s.D, BLN = s.B * s.L * s.N;
    u = random_vec(BLD, seed);
    dt = random_vec(BLD, seed + 1, dt_lo, dt_hi);
    dt_bias = random_vec(s.D, seed + 2, -1.0f, 0.5f);
    A_log = random_vec(s.D * s.N, seed + 3, -1.0f, 2.0f);
    Bm = random_vec(BLN, seed + 4);
    Cm = random_vec(BLN, seed + 5);
    Dskip = random_vec(s.D, seed + 6);
    h0 = random_vec(s.B * s.D * s.N, seed + 7);
  }
};

// The recurrence as written in the paper, one channel at a time, in double.
void naive_scan(const ScanShape& s, const float* u, const float* dt, const float* dt_bias,
                const float* A_log, const float* Bm, const float* Cm, const float* Dskip,
                const float* h0, std::vector<double>& y, std::vector<double>& h_last) {
  y.assign(s.B * s.L * s.D, 0.0);
  h_last.assign(s.B * s.D * s.N, 0.0);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t d = 0; d < s.D; ++d) {
      std::vector<double> h(s.N, 0.0);
      if (h0)
        for (int64_t n = 0; n < s.N; ++n) h[n] = h0[(b * s.D + d) * s.N + n];
      for (int64_t t = 0; t < s.L; ++t) {
        const int64_t i = (b * s.L + t) * s.D + d;
        const double z = dt[i] + (dt_bias ? double(dt_bias[d]) : 0.0);
        const double delta = z > 20.0 ? z : std::log(1.0 + std::exp(z));
        double out = 0.0;
        for (int64_t n = 0; n < s.N; ++n) {
          const double A = -std::exp(double(A_log[d * s.N + n]));
          const double bt = Bm[(b * s.L + t) * s.N + n], ct = Cm[(b * s.L + t) * s.N + n];
          h[n] = std::exp(delta * A) * h[n] + delta * u[i] * bt;
          out += h[n] * ct;
        }
        y[i] = out + (Dskip ? double(Dskip[d]) : 0.0) * u[i];
      }
      for (int64_t n = 0; n < s.N; ++n) h_last[(b * s.D + d) * s.N + n] = h[n];
    }
}

// Elementwise |got - want| <= atol + rtol * |want|, reporting the first few misses.
template <typename T>
::testing::AssertionResult all_close(const std::vector<float>& got, const std::vector<T>& want,
                                     double atol, double rtol) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "size " << got.size() << " vs " << want.size();
  int bad = 0;
  std::ostringstream msg;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(double(got[i]) - double(want[i]));
    if (!(err <= atol + rtol * std::fabs(double(want[i])))) {  // also catches NaN
      if (bad < 6) msg << "\n  [" << i << "] got " << got[i] << " want " << want[i];
      ++bad;
    }
  }
  if (bad)
    return ::testing::AssertionFailure() << bad << " of " << got.size() << " differ:" << msg.str();
  return ::testing::AssertionSuccess();
}

// Rows [t0, t1) of a (B, L, W) array.
std::vector<float> time_slice(const std::vector<float>& x, int64_t B, int64_t L, int64_t W,
                              int64_t t0, int64_t t1) {
  std::vector<float> out;
  for (int64_t b = 0; b < B; ++b)
    out.insert(out.end(), x.begin() + (b * L + t0) * W, x.begin() + (b * L + t1) * W);
  return out;
}

}  // namespace

TEST(SelectiveScan, ForwardMatchesNaiveReference) {
  // d_state 16 (one group), 5 (padded group), 33 (three groups); D with channel tails; L = 1.
  for (const ScanShape& s :
       {ScanShape{2, 100, 37, 16}, ScanShape{1, 1, 16, 16}, ScanShape{2, 17, 5, 5},
        ScanShape{1, 70, 48, 33}, ScanShape{2, 1, 21, 5}}) {
    SCOPED_TRACE(::testing::Message()
                 << "B=" << s.B << " L=" << s.L << " D=" << s.D << " N=" << s.N);
    const ScanInputs in(s, 10 + s.N);
    std::vector<double> want_y, want_h;
    naive_scan(s, in.u.data(), in.dt.data(), in.dt_bias.data(), in.A_log.data(), in.Bm.data(),
               in.Cm.data(), in.Dskip.data(), in.h0.data(), want_y, want_h);
    std::vector<float> y(in.u.size(), NAN), h_last(in.h0.size(), NAN);
    pf::cpu::selective_scan_fwd(s, in.u.data(), in.dt.data(), in.dt_bias.data(), in.A_log.data(),
                                in.Bm.data(), in.Cm.data(), in.Dskip.data(), in.h0.data(), y.data(),
                                h_last.data());
    EXPECT_TRUE(all_close(y, want_y, 2e-5, 1e-4));
    EXPECT_TRUE(all_close(h_last, want_h, 2e-5, 1e-4));
    // The in-library reference agrees with this one.
    std::vector<float> ry(in.u.size()), rh(in.h0.size());
    pf::cpu::selective_scan_ref(s, in.u.data(), in.dt.data(), in.dt_bias.data(), in.A_log.data(),
                                in.Bm.data(), in.Cm.data(), in.Dskip.data(), in.h0.data(),
                                ry.data(), rh.data());
    EXPECT_TRUE(all_close(ry, want_y, 1e-6, 1e-6));
    EXPECT_TRUE(all_close(rh, want_h, 1e-6, 1e-6));
  }
}

TEST(SelectiveScan, ForwardWithoutOptionalInputs) {
  // No dt_bias, no D, zero initial state; dt up to 25 crosses softplus's linear branch (> 20).
  const ScanShape s{2, 40, 19, 16};
  const ScanInputs in(s, 30, -6.0f, 25.0f);
  std::vector<double> want_y, want_h;
  naive_scan(s, in.u.data(), in.dt.data(), nullptr, in.A_log.data(), in.Bm.data(), in.Cm.data(),
             nullptr, nullptr, want_y, want_h);
  std::vector<float> y(in.u.size(), NAN), h_last(s.B * s.D * s.N, NAN);
  pf::cpu::selective_scan_fwd(s, in.u.data(), in.dt.data(), nullptr, in.A_log.data(), in.Bm.data(),
                              in.Cm.data(), nullptr, nullptr, y.data(), h_last.data());
  EXPECT_TRUE(all_close(y, want_y, 2e-5, 1e-4));
  EXPECT_TRUE(all_close(h_last, want_h, 2e-5, 1e-4));
}

TEST(SelectiveScan, StepLoopMatchesParallelForward) {
  for (const ScanShape& s : {ScanShape{2, 50, 37, 16}, ScanShape{1, 30, 20, 5}}) {
    SCOPED_TRACE(::testing::Message() << "D=" << s.D << " N=" << s.N);
    const ScanInputs in(s, 40 + s.N);
    std::vector<float> y(in.u.size()), h_last(in.h0.size());
    pf::cpu::selective_scan_fwd(s, in.u.data(), in.dt.data(), in.dt_bias.data(), in.A_log.data(),
                                in.Bm.data(), in.Cm.data(), in.Dskip.data(), in.h0.data(), y.data(),
                                h_last.data());
    std::vector<float> h = in.h0, ys(in.u.size());
    std::vector<float> ut(s.B * s.D), dtt(s.B * s.D), bt(s.B * s.N), ct(s.B * s.N), yt(s.B * s.D);
    for (int64_t t = 0; t < s.L; ++t) {
      ut = time_slice(in.u, s.B, s.L, s.D, t, t + 1);
      dtt = time_slice(in.dt, s.B, s.L, s.D, t, t + 1);
      bt = time_slice(in.Bm, s.B, s.L, s.N, t, t + 1);
      ct = time_slice(in.Cm, s.B, s.L, s.N, t, t + 1);
      pf::cpu::selective_scan_step(s.B, s.D, s.N, ut.data(), dtt.data(), in.dt_bias.data(),
                                   in.A_log.data(), bt.data(), ct.data(), in.Dskip.data(), h.data(),
                                   yt.data());
      for (int64_t b = 0; b < s.B; ++b)
        std::copy_n(yt.begin() + b * s.D, s.D, ys.begin() + (b * s.L + t) * s.D);
    }
    EXPECT_TRUE(all_close(ys, y, 1e-6, 1e-5));
    EXPECT_TRUE(all_close(h, h_last, 1e-6, 1e-5));
  }
}

TEST(SelectiveScan, TwoChunksMatchOneCall) {
  const ScanShape s{2, 100, 37, 16};
  const ScanInputs in(s, 50);
  std::vector<float> y(in.u.size()), h_last(in.h0.size());
  pf::cpu::selective_scan_fwd(s, in.u.data(), in.dt.data(), in.dt_bias.data(), in.A_log.data(),
                              in.Bm.data(), in.Cm.data(), in.Dskip.data(), in.h0.data(), y.data(),
                              h_last.data());
  std::vector<float> h = in.h0, ys;
  for (auto [t0, t1] : {std::pair<int64_t, int64_t>{0, 37}, {37, 100}}) {
    const ScanShape c{s.B, t1 - t0, s.D, s.N};
    const auto u = time_slice(in.u, s.B, s.L, s.D, t0, t1);
    const auto dt = time_slice(in.dt, s.B, s.L, s.D, t0, t1);
    const auto bm = time_slice(in.Bm, s.B, s.L, s.N, t0, t1);
    const auto cm = time_slice(in.Cm, s.B, s.L, s.N, t0, t1);
    std::vector<float> yc(u.size());
    // h_last written over h0 in place, as a decoding session would.
    pf::cpu::selective_scan_fwd(c, u.data(), dt.data(), in.dt_bias.data(), in.A_log.data(),
                                bm.data(), cm.data(), in.Dskip.data(), h.data(), yc.data(),
                                h.data());
    ys.resize(y.size());
    for (int64_t b = 0; b < s.B; ++b)
      std::copy_n(yc.begin() + b * c.L * s.D, c.L * s.D, ys.begin() + (b * s.L + t0) * s.D);
  }
  EXPECT_TRUE(all_close(ys, y, 1e-6, 1e-5));
  EXPECT_TRUE(all_close(h, h_last, 1e-6, 1e-5));
}

TEST(SelectiveScan, OpBackwardMatchesFiniteDifferences) {
  using pf::test_util::random_var;
  // N = 5 pads one group; N = 17 spans two; D = 19 has a channel tail; L > 64 crosses a
  // checkpoint.
  for (auto [B, L, D, N] : {std::tuple<int64_t, int64_t, int64_t, int64_t>{2, 9, 19, 5},
                            {1, 70, 3, 2},
                            {1, 6, 16, 17}}) {
    SCOPED_TRACE(::testing::Message() << "B=" << B << " L=" << L << " D=" << D << " N=" << N);
    std::vector<pf::Var> in = {random_var({B, L, D}, 60),
                               random_var({B, L, D}, 61, -3.0f, 1.0f),
                               random_var({D}, 62, -1.0f, 0.5f),
                               random_var({D, N}, 63, -1.0f, 1.5f),
                               random_var({B, L, N}, 64),
                               random_var({B, L, N}, 65),
                               random_var({D}, 66)};
    EXPECT_TRUE(pf::test_util::gradcheck(in, [](const std::vector<pf::Var>& v) {
      return pf::selective_scan(v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
    }));
  }
}

TEST(SelectiveScan, OpWithoutBiasOrSkip) {
  using pf::test_util::random_var;
  std::vector<pf::Var> in = {random_var({1, 12, 17}, 70), random_var({1, 12, 17}, 71, -3.0f, 1.0f),
                             random_var({17, 4}, 72), random_var({1, 12, 4}, 73),
                             random_var({1, 12, 4}, 74)};
  EXPECT_TRUE(pf::test_util::gradcheck(in, [](const std::vector<pf::Var>& v) {
    return pf::selective_scan(v[0], v[1], pf::Var(), v[2], v[3], v[4], pf::Var());
  }));
}

TEST(SelectiveScan, OpRejectsBadShapes) {
  using pf::test_util::random_var;
  const auto u = random_var({2, 5, 8}, 1), dt = random_var({2, 5, 8}, 2);
  const auto bias = random_var({8}, 3), A = random_var({8, 4}, 4), Bm = random_var({2, 5, 4}, 5);
  const auto Dk = random_var({8}, 6);
  EXPECT_THROW(pf::selective_scan(u, random_var({2, 5, 7}, 7), bias, A, Bm, Bm, Dk), pf::Error);
  EXPECT_THROW(pf::selective_scan(u, dt, bias, random_var({7, 4}, 8), Bm, Bm, Dk), pf::Error);
  EXPECT_THROW(pf::selective_scan(u, dt, bias, A, random_var({2, 5, 3}, 9), Bm, Dk), pf::Error);
  EXPECT_THROW(pf::selective_scan(u, dt, random_var({7}, 10), A, Bm, Bm, Dk), pf::Error);
  EXPECT_NO_THROW(pf::selective_scan(u, dt, bias, A, Bm, Bm, Dk));
}

namespace {
struct ScanGrads {
  std::vector<float> du, ddt, dbias, dA, dB, dC, dD;
  explicit ScanGrads(const ScanShape& s)
      : du(s.B * s.L * s.D),
        ddt(du.size()),
        dbias(s.D),
        dA(s.D * s.N),
        dB(s.B * s.L * s.N),
        dC(dB.size()),
        dD(s.D) {}
  std::vector<std::vector<float>*> all() { return {&du, &ddt, &dbias, &dA, &dB, &dC, &dD}; }
};

void run_bwd(const ScanInputs& in, const std::vector<float>& dy, const float* ckpt, ScanGrads& g) {
  pf::cpu::selective_scan_bwd(in.s, in.u.data(), in.dt.data(), in.dt_bias.data(), in.A_log.data(),
                              in.Bm.data(), in.Cm.data(), in.Dskip.data(), dy.data(), g.du.data(),
                              g.ddt.data(), g.dbias.data(), g.dA.data(), g.dB.data(), g.dC.data(),
                              g.dD.data(), ckpt);
}
}  // namespace

TEST(SelectiveScan, KernelBackwardFromNonzeroInitialState) {
  // With checkpoints from a forward that started at h0, the backward is that scan's.
  const ScanShape s{2, 80, 21, 6};
  ScanInputs in(s, 80);
  const auto dy = random_vec(s.B * s.L * s.D, 81);
  std::vector<float> y(dy.size()), ckpt(pf::cpu::selective_scan_ckpt_floats(s));
  pf::cpu::selective_scan_fwd(s, in.u.data(), in.dt.data(), in.dt_bias.data(), in.A_log.data(),
                              in.Bm.data(), in.Cm.data(), in.Dskip.data(), in.h0.data(), y.data(),
                              nullptr, ckpt.data());
  ScanGrads g(s);
  run_bwd(in, dy, ckpt.data(), g);
  auto loss = [&] {  // sum(y * dy) in double from the naive reference
    std::vector<double> yr, hr;
    naive_scan(s, in.u.data(), in.dt.data(), in.dt_bias.data(), in.A_log.data(), in.Bm.data(),
               in.Cm.data(), in.Dskip.data(), in.h0.data(), yr, hr);
    double acc = 0;
    for (size_t i = 0; i < yr.size(); ++i) acc += yr[i] * dy[i];
    return acc;
  };
  std::vector<std::vector<float>*> params = {&in.u,  &in.dt, &in.dt_bias, &in.A_log,
                                             &in.Bm, &in.Cm, &in.Dskip};
  const auto grads = g.all();
  for (size_t p = 0; p < params.size(); ++p) {
    std::vector<float>& x = *params[p];
    for (size_t i = 0; i < x.size(); i += 1 + x.size() / 25) {
      const float orig = x[i];
      const double eps = 1e-3;
      x[i] = orig + float(eps);
      const double lp = loss();
      x[i] = orig - float(eps);
      const double lm = loss();
      x[i] = orig;
      const double num = (lp - lm) / (double(orig + float(eps)) - double(orig - float(eps)));
      EXPECT_NEAR((*grads[p])[i], num, 1e-3 + 2e-3 * std::fabs(num))
          << "input " << p << " [" << i << "]";
    }
  }
}

TEST(SelectiveScan, KernelBackwardRecomputesCheckpointsAndIsDeterministic) {
  const ScanShape s{2, 150, 40, 16};
  const ScanInputs in(s, 90);
  const auto dy = random_vec(s.B * s.L * s.D, 91);
  std::vector<float> y(dy.size()), ckpt(pf::cpu::selective_scan_ckpt_floats(s));
  pf::cpu::selective_scan_fwd(s, in.u.data(), in.dt.data(), in.dt_bias.data(), in.A_log.data(),
                              in.Bm.data(), in.Cm.data(), in.Dskip.data(), nullptr, y.data(),
                              nullptr, ckpt.data());
  ScanGrads a(s), b(s), c(s);
  run_bwd(in, dy, ckpt.data(), a);
  run_bwd(in, dy, nullptr, b);  // checkpoints recomputed from h0 = 0
  run_bwd(in, dy, ckpt.data(), c);
  for (size_t i = 0; i < a.all().size(); ++i) {
    EXPECT_TRUE(all_close(*b.all()[i], *a.all()[i], 1e-6, 1e-5)) << "gradient " << i;
    EXPECT_EQ(*c.all()[i], *a.all()[i]) << "gradient " << i << " changed between runs";
  }
  // Gradients not asked for are skipped; the others are unchanged, and accumulate (+=).
  std::vector<float> dB(a.dB.size(), 1.0f);
  pf::cpu::selective_scan_bwd(s, in.u.data(), in.dt.data(), in.dt_bias.data(), in.A_log.data(),
                              in.Bm.data(), in.Cm.data(), in.Dskip.data(), dy.data(), nullptr,
                              nullptr, nullptr, nullptr, dB.data(), nullptr, nullptr, ckpt.data());
  for (float& v : dB) v -= 1.0f;
  EXPECT_TRUE(all_close(dB, a.dB, 1e-6, 1e-6));
}

using pf::proc_status_kib;
using pf::reset_peak_rss;

TEST(SelectiveScan, LongBackwardWithoutStateTensor) {
  const ScanShape s{1, 4096, 64, 16};
  const ScanInputs in(s, 100);
  const auto dy = random_vec(s.B * s.L * s.D, 101);
  ScanGrads g(s);
  // A (B, L, D, N) f32 tensor would be 16 MiB; the checkpoints are 1/64 of that.
  EXPECT_EQ(pf::cpu::selective_scan_ckpt_floats(s), s.B * s.L * s.D * s.N / 64);
  const bool can_measure = reset_peak_rss();
  const long rss_before = proc_status_kib("VmRSS:");
  run_bwd(in, dy, nullptr, g);
  const long peak_after = proc_status_kib("VmHWM:");
  if (can_measure && rss_before > 0 && peak_after > 0) {
    EXPECT_LT(peak_after - rss_before, 6 * 1024)
        << "selective_scan_bwd peak memory grew by " << (peak_after - rss_before) << " KiB";
  }
  for (auto* v : g.all())
    for (float x : *v) ASSERT_TRUE(std::isfinite(x));
}
