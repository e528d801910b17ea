// Mamba-2 SSD and gated RMSNorm: the chunked forward against a sequential double-precision
// recurrence written here, chunk-size independence, the decode step and state hand-over,
// and the backward against finite differences (f32 through the tape, and double on a
// shape large enough to cross the kernel's triangle blocks).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <vector>

#include "autograd/ops_ssd.h"
#include "base/error.h"
#include "base/rng.h"
#include "gradcheck.h"
#include "kernels/cpu/gated_norm.h"
#include "kernels/cpu/ssd.h"

using namespace pf;
using pf::cpu::SsdShape;
using pf::test_util::gradcheck;
using pf::test_util::random_var;

namespace {

std::vector<float> uniform(int64_t n, uint64_t seed, float lo, float hi) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& e : v) e = rng.uniform(lo, hi);
  return v;
}

// Inputs of one SSD problem. Ranges give per-step decays from ~0.99 down to ~0.01, so some
// heads carry state across many chunks and others forget within a few steps.
struct SsdCase {
  SsdShape s;
  std::vector<float> x, dt, dt_bias, A_log, Bm, Cm, D, h0;  // layouts as in ssd.h
  SsdCase(SsdShape shape, uint64_t seed) : s(shape) {
    x = uniform(s.B * s.L * s.H * s.P, seed + 1, -1.0f, 1.0f);
    dt = uniform(s.B * s.L * s.H, seed + 2, -2.0f, 1.0f);
    dt_bias = uniform(s.H, seed + 3, -1.0f, 0.5f);
    A_log = uniform(s.H, seed + 4, -3.0f, 1.0f);
    Bm = uniform(s.B * s.L * s.G * s.N, seed + 5, -1.0f, 1.0f);
    Cm = uniform(s.B * s.L * s.G * s.N, seed + 6, -1.0f, 1.0f);
    D = uniform(s.H, seed + 7, 0.5f, 1.5f);
    h0 = uniform(s.B * s.H * s.P * s.N, seed + 8, -1.0f, 1.0f);
  }
  int64_t y_size() const { return s.B * s.L * s.H * s.P; }
  int64_t state_size() const { return s.B * s.H * s.P * s.N; }
};

// The recurrence, step by step in double. Inputs are doubles so finite differences of it are
// exact to ~1e-9. Returns y (B, L, H, P); writes the final state when asked.
struct RefIn {
  std::vector<double> x, dt, dt_bias, A_log, Bm, Cm, D;
};
RefIn to_double(const SsdCase& c) {
  auto d = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
  return {d(c.x), d(c.dt), d(c.dt_bias), d(c.A_log), d(c.Bm), d(c.Cm), d(c.D)};
}
std::vector<double> recurrence(const SsdShape& s, const RefIn& in, const float* h0,
                               std::vector<double>* h_last = nullptr) {
  const int64_t P = s.P, N = s.N, H = s.H, G = s.G;
  std::vector<double> y(s.B * s.L * H * P), state(P * N);
  if (h_last) h_last->assign(s.B * H * P * N, 0.0);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t g = h / (H / G);
      for (int64_t k = 0; k < P * N; ++k) state[k] = h0 ? h0[(b * H + h) * P * N + k] : 0.0;
      for (int64_t t = 0; t < s.L; ++t) {
        const double u = in.dt[(b * s.L + t) * H + h] + in.dt_bias[h];
        const double delta = std::log(1.0 + std::exp(u));
        const double decay = std::exp(-delta * std::exp(in.A_log[h]));
        for (int64_t p = 0; p < P; ++p) {
          const double xv = in.x[((b * s.L + t) * H + h) * P + p];
          double out = in.D[h] * xv;
          for (int64_t n = 0; n < N; ++n) {
            double& sv = state[p * N + n];
            sv = decay * sv + delta * xv * in.Bm[((b * s.L + t) * G + g) * N + n];
            out += sv * in.Cm[((b * s.L + t) * G + g) * N + n];
          }
          y[((b * s.L + t) * H + h) * P + p] = out;
        }
      }
      if (h_last) std::copy(state.begin(), state.end(), h_last->begin() + (b * H + h) * P * N);
    }
  return y;
}

::testing::AssertionResult all_close(const std::vector<float>& got, const std::vector<double>& want,
                                     double atol, double rtol) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "size " << got.size() << " vs " << want.size();
  int bad = 0;
  std::ostringstream msg;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(got[i] - want[i]);
    if (!(err <= atol + rtol * std::fabs(want[i]))) {
      if (bad < 6) msg << "\n  [" << i << "] got " << got[i] << " want " << want[i];
      ++bad;
    }
  }
  if (bad)
    return ::testing::AssertionFailure() << bad << " of " << got.size() << " differ:" << msg.str();
  return ::testing::AssertionSuccess();
}

// max |a - b| / max |b|.
double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::fabs(double(a[i]) - b[i]));
    den = std::max(den, std::fabs(double(b[i])));
  }
  return num / std::max(den, 1e-30);
}

struct FwdOut {
  std::vector<float> y, h_last;
};
FwdOut run_fwd(const SsdCase& c, int64_t chunk, bool with_h0) {
  FwdOut o{std::vector<float>(c.y_size()), std::vector<float>(c.state_size())};
  cpu::ssd_fwd(c.s, chunk, c.x.data(), c.dt.data(), c.dt_bias.data(), c.A_log.data(), c.Bm.data(),
               c.Cm.data(), c.D.data(), with_h0 ? c.h0.data() : nullptr, o.y.data(),
               o.h_last.data());
  return o;
}

}  // namespace

// ---- forward -------------------------------------------------------------------------------

TEST(Ssd, ForwardMatchesSequentialReference) {
  for (int64_t G : {1, 2})
    for (int64_t L : {1, 37, 100}) {
      const SsdCase c({2, L, 4, 8, G, 16}, 100 + 10 * G + L);
      for (bool with_h0 : {false, true}) {
        std::vector<double> want_h;
        const auto want = recurrence(c.s, to_double(c), with_h0 ? c.h0.data() : nullptr, &want_h);
        for (int64_t chunk : {1, 8, 16, 64, 256}) {
          SCOPED_TRACE(::testing::Message()
                       << "G " << G << " L " << L << " chunk " << chunk << " h0 " << with_h0);
          const FwdOut o = run_fwd(c, chunk, with_h0);
          EXPECT_TRUE(all_close(o.y, want, 2e-5, 2e-5));
          EXPECT_TRUE(all_close(o.h_last, want_h, 2e-5, 2e-5));
        }
      }
    }
}

TEST(Ssd, KernelReferenceMatchesTestReference) {
  const SsdCase c({2, 23, 4, 8, 2, 16}, 7);
  std::vector<float> y(c.y_size()), hl(c.state_size());
  cpu::ssd_ref(c.s, c.x.data(), c.dt.data(), c.dt_bias.data(), c.A_log.data(), c.Bm.data(),
               c.Cm.data(), c.D.data(), c.h0.data(), y.data(), hl.data());
  std::vector<double> want_h;
  EXPECT_TRUE(all_close(y, recurrence(c.s, to_double(c), c.h0.data(), &want_h), 1e-6, 1e-6));
  EXPECT_TRUE(all_close(hl, want_h, 1e-6, 1e-6));
}

TEST(Ssd, ResultDoesNotDependOnChunk) {
  const SsdCase c({2, 100, 4, 8, 2, 16}, 11);
  const FwdOut whole = run_fwd(c, c.s.L, true);
  for (int64_t chunk : {1, 7, 32}) {
    const FwdOut o = run_fwd(c, chunk, true);
    EXPECT_LE(rel_diff(o.y, whole.y), 1e-5) << "chunk " << chunk;
    EXPECT_LE(rel_diff(o.h_last, whole.h_last), 1e-5) << "chunk " << chunk;
  }
}

TEST(Ssd, OptionalInputsAbsent) {
  // No dt_bias and no skip: the same as zeros.
  SsdCase c({1, 20, 2, 4, 1, 8}, 13);
  std::vector<float> y(c.y_size());
  cpu::ssd_fwd(c.s, 8, c.x.data(), c.dt.data(), nullptr, c.A_log.data(), c.Bm.data(), c.Cm.data(),
               nullptr, nullptr, y.data(), nullptr);
  std::fill(c.dt_bias.begin(), c.dt_bias.end(), 0.0f);
  std::fill(c.D.begin(), c.D.end(), 0.0f);
  EXPECT_TRUE(all_close(y, recurrence(c.s, to_double(c), nullptr), 2e-5, 2e-5));
}

TEST(Ssd, ForwardEqualsLoopOfSteps) {
  const SsdCase c({2, 50, 4, 8, 2, 16}, 17);
  const SsdShape& s = c.s;
  const FwdOut full = run_fwd(c, 16, true);
  std::vector<float> state = c.h0, y(c.y_size());
  std::vector<float> xt(s.B * s.H * s.P), dtt(s.B * s.H), bt(s.B * s.G * s.N), ct(bt.size()),
      yt(xt.size());
  for (int64_t t = 0; t < s.L; ++t) {
    for (int64_t b = 0; b < s.B; ++b) {  // gather step t of every sequence
      std::copy_n(c.x.data() + (b * s.L + t) * s.H * s.P, s.H * s.P, xt.data() + b * s.H * s.P);
      std::copy_n(c.dt.data() + (b * s.L + t) * s.H, s.H, dtt.data() + b * s.H);
      std::copy_n(c.Bm.data() + (b * s.L + t) * s.G * s.N, s.G * s.N, bt.data() + b * s.G * s.N);
      std::copy_n(c.Cm.data() + (b * s.L + t) * s.G * s.N, s.G * s.N, ct.data() + b * s.G * s.N);
    }
    cpu::ssd_step(s, xt.data(), dtt.data(), c.dt_bias.data(), c.A_log.data(), bt.data(), ct.data(),
                  c.D.data(), state.data(), yt.data());
    for (int64_t b = 0; b < s.B; ++b)
      std::copy_n(yt.data() + b * s.H * s.P, s.H * s.P, y.data() + (b * s.L + t) * s.H * s.P);
  }
  EXPECT_LE(rel_diff(y, full.y), 1e-5);
  EXPECT_LE(rel_diff(state, full.h_last), 1e-5);
}

TEST(Ssd, SplitSequenceCarriesState) {
  const SsdCase c({2, 90, 4, 8, 2, 16}, 19);
  const SsdShape& s = c.s;
  const FwdOut whole = run_fwd(c, 32, true);
  const int64_t L1 = 41, L2 = s.L - L1;
  // Slice every time-major input into [0, L1) and [L1, L).
  auto part = [&](const std::vector<float>& v, int64_t row, int64_t t0, int64_t n) {
    std::vector<float> out;
    for (int64_t b = 0; b < s.B; ++b)
      out.insert(out.end(), v.begin() + (b * s.L + t0) * row, v.begin() + (b * s.L + t0 + n) * row);
    return out;
  };
  const int64_t xr = s.H * s.P, br = s.G * s.N;
  std::vector<float> y1(s.B * L1 * xr), y2(s.B * L2 * xr), h1(c.state_size()), h2(h1.size());
  SsdShape s1 = s, s2 = s;
  s1.L = L1, s2.L = L2;
  cpu::ssd_fwd(s1, 16, part(c.x, xr, 0, L1).data(), part(c.dt, s.H, 0, L1).data(), c.dt_bias.data(),
               c.A_log.data(), part(c.Bm, br, 0, L1).data(), part(c.Cm, br, 0, L1).data(),
               c.D.data(), c.h0.data(), y1.data(), h1.data());
  cpu::ssd_fwd(s2, 16, part(c.x, xr, L1, L2).data(), part(c.dt, s.H, L1, L2).data(),
               c.dt_bias.data(), c.A_log.data(), part(c.Bm, br, L1, L2).data(),
               part(c.Cm, br, L1, L2).data(), c.D.data(), h1.data(), y2.data(), h2.data());
  EXPECT_LE(rel_diff(y1, part(whole.y, xr, 0, L1)), 1e-5);
  EXPECT_LE(rel_diff(y2, part(whole.y, xr, L1, L2)), 1e-5);
  EXPECT_LE(rel_diff(h2, whole.h_last), 1e-5);
  // The same second half advancing the state in place (h0 == h_last), as decoding does.
  cpu::ssd_fwd(s2, 16, part(c.x, xr, L1, L2).data(), part(c.dt, s.H, L1, L2).data(),
               c.dt_bias.data(), c.A_log.data(), part(c.Bm, br, L1, L2).data(),
               part(c.Cm, br, L1, L2).data(), c.D.data(), h1.data(), y2.data(), h1.data());
  EXPECT_EQ(h1, h2);
}

TEST(Ssd, DeterministicAcrossRuns) {
  const SsdCase c({2, 70, 4, 8, 1, 16}, 23);
  EXPECT_EQ(run_fwd(c, 16, true).y, run_fwd(c, 16, true).y);
}

TEST(Ssd, RejectsBadShapes) {
  const SsdCase c({1, 4, 3, 4, 2, 8}, 29);  // 3 heads, 2 groups
  std::vector<float> y(c.y_size());
  EXPECT_THROW(cpu::ssd_fwd(c.s, 4, c.x.data(), c.dt.data(), nullptr, c.A_log.data(), c.Bm.data(),
                            c.Cm.data(), nullptr, nullptr, y.data(), nullptr),
               pf::Error);
}

// ---- backward ------------------------------------------------------------------------------

TEST(Ssd, BackwardMatchesFiniteDifferences) {
  // Through the tape, every input, several chunkings (one chunk, several with a tail, one step).
  for (int64_t chunk : {4, 16, 1}) {
    SCOPED_TRACE(::testing::Message() << "chunk " << chunk);
    const int64_t B = 2, L = 11, H = 4, P = 3, G = 2, N = 5;
    Var x = random_var({B, L, H, P}, 31), dt = random_var({B, L, H}, 32, -2.0f, 1.0f);
    Var bias = random_var({H}, 33, -1.0f, 0.5f), A_log = random_var({H}, 34, -2.0f, 1.0f);
    Var Bm = random_var({B, L, G, N}, 35), Cm = random_var({B, L, G, N}, 36);
    Var D = random_var({H}, 37, 0.5f, 1.5f);
    EXPECT_TRUE(gradcheck({x, dt, bias, A_log, Bm, Cm, D}, [chunk](const std::vector<Var>& in) {
      return ssd(in[0], in[1], in[2], in[3], in[4], in[5], in[6], chunk);
    }));
  }
}

TEST(Ssd, OpWithoutBiasOrSkip) {
  // Undefined dt_bias / Dskip Vars act as zeros, forward and backward.
  const int64_t B = 1, L = 9, H = 2, P = 3, G = 1, N = 4;
  Var x = random_var({B, L, H, P}, 45), dt = random_var({B, L, H}, 46, -2.0f, 1.0f);
  Var A_log = random_var({H}, 47, -2.0f, 1.0f);
  Var Bm = random_var({B, L, G, N}, 48), Cm = random_var({B, L, G, N}, 49);
  Var zeros(Tensor::zeros({H}));
  {
    NoGradScope ng;
    EXPECT_EQ(ssd(x, dt, Var(), A_log, Bm, Cm, Var(), 4).value().to_vector(),
              ssd(x, dt, zeros, A_log, Bm, Cm, zeros, 4).value().to_vector());
  }
  EXPECT_TRUE(gradcheck({x, dt, A_log, Bm, Cm}, [](const std::vector<Var>& in) {
    return ssd(in[0], in[1], Var(), in[2], in[3], in[4], Var(), 4);
  }));
}

TEST(Ssd, BackwardMatchesDoubleFiniteDifferencesAcrossBlocks) {
  // Chunks longer than the kernel's 64-row triangle blocks, a tail chunk, and P, N at
  // multiples of 16. The loss is sum(y * R); the reference gradient is a central difference
  // of the double recurrence on a spread of elements of every input.
  const SsdCase c({1, 150, 2, 16, 1, 32}, 41);
  const SsdShape& s = c.s;
  const std::vector<float> R = uniform(c.y_size(), 42, -1.0f, 1.0f);
  RefIn in = to_double(c);
  auto loss = [&]() {
    const auto y = recurrence(s, in, nullptr);
    double l = 0.0;
    for (size_t i = 0; i < y.size(); ++i) l += y[i] * R[i];
    return l;
  };
  for (int64_t chunk : {128, 48}) {
    SCOPED_TRACE(::testing::Message() << "chunk " << chunk);
    std::vector<float> dx(c.x.size()), ddt(c.dt.size()), dbias(s.H), dA(s.H), dB(c.Bm.size()),
        dC(c.Cm.size()), dD(s.H);
    cpu::ssd_bwd(s, chunk, c.x.data(), c.dt.data(), c.dt_bias.data(), c.A_log.data(), c.Bm.data(),
                 c.Cm.data(), c.D.data(), R.data(), dx.data(), ddt.data(), dbias.data(), dA.data(),
                 dB.data(), dC.data(), dD.data());
    struct Check {
      std::vector<double>* param;
      const std::vector<float>* grad;
      const char* name;
    };
    for (const Check& k :
         {Check{&in.x, &dx, "x"}, Check{&in.dt, &ddt, "dt"}, Check{&in.dt_bias, &dbias, "dt_bias"},
          Check{&in.A_log, &dA, "A_log"}, Check{&in.Bm, &dB, "Bm"}, Check{&in.Cm, &dC, "Cm"},
          Check{&in.D, &dD, "D"}}) {
      const int64_t n = static_cast<int64_t>(k.param->size());
      const int64_t step = std::max<int64_t>(1, n / 23);
      for (int64_t i = 0; i < n; i += step) {
        double& v = (*k.param)[i];
        const double orig = v, h = 1e-6;
        v = orig + h;
        const double lp = loss();
        v = orig - h;
        const double lm = loss();
        v = orig;
        const double num = (lp - lm) / (2 * h), ana = (*k.grad)[i];
        EXPECT_NEAR(ana, num, 1e-4 + 1e-4 * std::fabs(num)) << k.name << "[" << i << "]";
      }
    }
  }
}

TEST(Ssd, BackwardWithSomeGradientsAbsent) {
  // Null gradient buffers are skipped; the others are unchanged and accumulate (+=).
  const SsdCase c({1, 40, 2, 8, 1, 16}, 43);
  const std::vector<float> dy = uniform(c.y_size(), 44, -1.0f, 1.0f);
  auto run = [&](bool all, std::vector<float>& dx, std::vector<float>& ddt) {
    std::vector<float> dB(c.Bm.size()), dC(c.Cm.size()), dA(c.s.H), dbias(c.s.H), dD(c.s.H);
    cpu::ssd_bwd(c.s, 16, c.x.data(), c.dt.data(), c.dt_bias.data(), c.A_log.data(), c.Bm.data(),
                 c.Cm.data(), c.D.data(), dy.data(), dx.data(), ddt.data(),
                 all ? dbias.data() : nullptr, all ? dA.data() : nullptr, all ? dB.data() : nullptr,
                 all ? dC.data() : nullptr, all ? dD.data() : nullptr);
  };
  std::vector<float> dx1(c.x.size()), ddt1(c.dt.size()), dx2(c.x.size(), 1.0f),
      ddt2(c.dt.size(), 1.0f);
  run(true, dx1, ddt1);
  run(false, dx2, ddt2);
  for (size_t i = 0; i < dx1.size(); ++i) ASSERT_NEAR(dx2[i], dx1[i] + 1.0f, 1e-5);
  for (size_t i = 0; i < ddt1.size(); ++i) ASSERT_NEAR(ddt2[i], ddt1[i] + 1.0f, 1e-5);
}

// ---- gated RMSNorm -------------------------------------------------------------------------

TEST(GatedRmsnorm, ForwardMatchesReference) {
  // D = 40: vector lanes of 16 plus a scalar tail, per group too (20 = 16 + 4).
  const int64_t rows = 5, D = 40;
  const float eps = 1e-5f;
  for (int64_t groups : {1, 2}) {
    Var x = random_var({rows, D}, 51, -2.0f, 2.0f), z = random_var({rows, D}, 52, -3.0f, 3.0f);
    Var w = random_var({D}, 53, 0.5f, 1.5f);
    const Var y = gated_rmsnorm(x, z, w, groups, eps);
    std::vector<double> want(rows * D);
    const int64_t Dg = D / groups;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t g = 0; g < groups; ++g) {
        std::vector<double> v(Dg);
        double ss = 0.0;
        for (int64_t j = 0; j < Dg; ++j) {
          const double xv = x.data()[r * D + g * Dg + j], zv = z.data()[r * D + g * Dg + j];
          v[j] = xv * zv / (1.0 + std::exp(-zv));
          ss += v[j] * v[j];
        }
        const double rs = 1.0 / std::sqrt(ss / Dg + eps);
        for (int64_t j = 0; j < Dg; ++j)
          want[r * D + g * Dg + j] = v[j] * rs * w.data()[g * Dg + j];
      }
    EXPECT_TRUE(all_close(y.value().to_vector(), want, 1e-5, 1e-5)) << "groups " << groups;
  }
}

TEST(GatedRmsnorm, BackwardMatchesFiniteDifferences) {
  for (int64_t groups : {1, 2}) {
    Var x = random_var({2, 3, 40}, 61, -2.0f, 2.0f), z = random_var({2, 3, 40}, 62, -3.0f, 3.0f);
    Var w = random_var({40}, 63, 0.5f, 1.5f);
    EXPECT_TRUE(gradcheck({x, z, w},
                          [groups](const std::vector<Var>& in) {
                            return gated_rmsnorm(in[0], in[1], in[2], groups, 1e-5f);
                          }))
        << "groups " << groups;
  }
}
