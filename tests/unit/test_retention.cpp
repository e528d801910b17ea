// RetNet retention: each form against its double-precision reference, chunk-size
// independence, the decode step and state hand-over, agreement of the forms after a head
// norm without eps, the backward against finite differences (double, with the row factors
// held at their unperturbed values; and f32 through the tape with a scale-invariant loss),
// and the parallel form at T = 4096 without a (T, T) allocation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "autograd/ops_retention.h"
#include "base/error.h"
#include "base/memory_stats.h"
#include "base/rng.h"
#include "base/threads.h"
#include "gradcheck.h"
#include "kernels/cpu/retention.h"

using namespace pf;
using pf::cpu::RetShape;
using pf::test_util::gradcheck;
using pf::test_util::random_var;

namespace {

std::vector<float> uniform(int64_t n, uint64_t seed, float lo, float hi) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& e : v) e = rng.uniform(lo, hi);
  return v;
}

// Decay sets: the spec's 1 - 2^(-5-h), close to 1 (windows of thousands of tokens), small.
std::vector<float> gammas(int kind, int64_t H) {
  std::vector<float> g(H);
  for (int64_t h = 0; h < H; ++h) {
    if (kind == 0) g[h] = 1.0f - std::ldexp(1.0f, -5 - static_cast<int>(h));
    if (kind == 1) g[h] = 1.0f - std::ldexp(1.0f, -12 - static_cast<int>(h));
    if (kind == 2) g[h] = 0.5f - 0.1f * static_cast<float>(h % 3);
  }
  return g;
}

struct RetCase {
  RetShape s;
  std::vector<float> q, k, v, gamma;  // (B, T, H, dk) x2, (B, T, H, dv), (H)
  RetCase(RetShape shape, uint64_t seed, int gamma_kind = 0, float qk_range = 1.0f) : s(shape) {
    q = uniform(s.B * s.T * s.H * s.dk, seed + 1, -qk_range, qk_range);
    k = uniform(s.B * s.T * s.H * s.dk, seed + 2, -qk_range, qk_range);
    v = uniform(s.B * s.T * s.H * s.dv, seed + 3, -1.0f, 1.0f);
    gamma = gammas(gamma_kind, s.H);
  }
  int64_t out_size() const { return s.B * s.T * s.H * s.dv; }
  int64_t state_size() const { return s.B * s.H * s.dk * s.dv; }
  std::vector<float> fwd(cpu::RetForm form, int64_t chunk, std::vector<float>* state_out = nullptr,
                         const float* state_in = nullptr, int64_t pos0 = 0) const {
    std::vector<float> out(out_size(), NAN);
    if (state_out) state_out->assign(state_size(), NAN);
    cpu::retention_fwd(s, form, chunk, q.data(), k.data(), v.data(), gamma.data(), out.data(),
                       state_in, state_out ? state_out->data() : nullptr, pos0);
    return out;
  }
  std::vector<float> ref(cpu::RetForm form, std::vector<float>* state_out = nullptr,
                         const float* state_in = nullptr, int64_t pos0 = 0) const {
    std::vector<float> out(out_size(), NAN);
    if (state_out) state_out->assign(state_size(), NAN);
    cpu::retention_ref(s, form, q.data(), k.data(), v.data(), gamma.data(), out.data(), state_in,
                       state_out ? state_out->data() : nullptr, pos0);
    return out;
  }
};

// max |a - b| / max |b|.
double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::fabs(double(a[i]) - b[i]));
    den = std::max(den, std::fabs(double(b[i])));
  }
  return a.size() == b.size() ? num / std::max(den, 1e-30) : 1e30;
}

// x / sqrt(mean(x^2)) over each row of length d (the head norm without eps or weight).
std::vector<float> row_rms_norm(const std::vector<float>& x, int64_t d) {
  std::vector<float> y(x.size());
  for (size_t r = 0; r < x.size() / d; ++r) {
    double ss = 0.0;
    for (int64_t e = 0; e < d; ++e) ss += double(x[r * d + e]) * x[r * d + e];
    const double inv = 1.0 / std::sqrt(ss / d);
    for (int64_t e = 0; e < d; ++e) y[r * d + e] = static_cast<float>(x[r * d + e] * inv);
  }
  return y;
}

// Runs retention_step token by token from `state` (advanced in place), starting at pos0.
std::vector<float> step_loop(const RetCase& c, std::vector<float>& state, int64_t pos0 = 0) {
  const RetShape& s = c.s;
  const int64_t qr = s.H * s.dk, vr = s.H * s.dv;
  std::vector<float> out(c.out_size()), qt(s.B * qr), kt(s.B * qr), vt(s.B * vr), ot(s.B * vr);
  for (int64_t t = 0; t < s.T; ++t) {
    for (int64_t b = 0; b < s.B; ++b) {  // gather token t of every sequence
      std::copy_n(c.q.data() + (b * s.T + t) * qr, qr, qt.data() + b * qr);
      std::copy_n(c.k.data() + (b * s.T + t) * qr, qr, kt.data() + b * qr);
      std::copy_n(c.v.data() + (b * s.T + t) * vr, vr, vt.data() + b * vr);
    }
    cpu::retention_step(s, qt.data(), kt.data(), vt.data(), c.gamma.data(), state.data(), pos0 + t,
                        ot.data());
    for (int64_t b = 0; b < s.B; ++b)
      std::copy_n(ot.data() + b * vr, vr, out.data() + (b * s.T + t) * vr);
  }
  return out;
}

// torchscale's recurrent form as written in the spec, in double: normalised state S,
// scale_t = scale_{t-1} g + 1, S_t = S_{t-1} sqrt(scale_{t-1}) g / sqrt(scale_t) + k^T v /
// sqrt(scale_t), out = q S_t. Independent of the kernels' un-normalised bookkeeping.
std::vector<float> torchscale_recurrent(const RetCase& c) {
  const RetShape& s = c.s;
  std::vector<float> out(c.out_size());
  std::vector<double> S(s.dk * s.dv);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h) {
      const double g = c.gamma[h];
      std::fill(S.begin(), S.end(), 0.0);
      double scale = 0.0;
      for (int64_t t = 0; t < s.T; ++t) {
        const double prev = scale;
        scale = prev * g + 1.0;
        const float* qt = c.q.data() + ((b * s.T + t) * s.H + h) * s.dk;
        const float* kt = c.k.data() + ((b * s.T + t) * s.H + h) * s.dk;
        const float* vt = c.v.data() + ((b * s.T + t) * s.H + h) * s.dv;
        for (int64_t d = 0; d < s.dk; ++d)
          for (int64_t e = 0; e < s.dv; ++e)
            S[d * s.dv + e] = S[d * s.dv + e] * std::sqrt(prev) * g / std::sqrt(scale) +
                              double(kt[d]) * vt[e] / std::sqrt(scale);
        for (int64_t e = 0; e < s.dv; ++e) {
          double o = 0.0;
          for (int64_t d = 0; d < s.dk; ++d) o += qt[d] * S[d * s.dv + e];
          out[((b * s.T + t) * s.H + h) * s.dv + e] = static_cast<float>(o);
        }
      }
    }
  return out;
}

constexpr cpu::RetForm kPar = cpu::RetForm::Parallel, kChunk = cpu::RetForm::Chunkwise;

}  // namespace

// ---- forward -------------------------------------------------------------------------------

TEST(Retention, FormsMatchDoubleReference) {
  for (int kind : {0, 1, 2})
    for (int64_t T : {1, 5, 64, 100, 200}) {
      const RetCase c({2, T, 3, 8, 16}, 100 + 10 * kind + T, kind);
      for (cpu::RetForm form : {kPar, kChunk}) {
        SCOPED_TRACE(::testing::Message() << "gammas " << kind << " T " << T << " form "
                                          << (form == kPar ? "parallel" : "chunkwise"));
        EXPECT_LE(rel_diff(c.fwd(form, 64), c.ref(form)), 5e-6);
      }
    }
}

TEST(Retention, ReferenceStateContinues) {
  // The reference itself: one call equals two calls joined by state_out -> state_in, pos0.
  const RetCase c({2, 30, 3, 8, 16}, 5);
  std::vector<float> S;
  const auto whole = c.ref(kChunk, &S);
  RetCase a = c, b = c;
  a.s.T = 12, b.s.T = 18;
  const int64_t qr = c.s.H * c.s.dk, vr = c.s.H * c.s.dv;
  for (RetCase* p : {&a, &b}) p->q.clear(), p->k.clear(), p->v.clear();
  for (int64_t bb = 0; bb < c.s.B; ++bb) {
    auto take = [&](const std::vector<float>& src, std::vector<float>& dst, int64_t row, int64_t t0,
                    int64_t n) {
      dst.insert(dst.end(), src.begin() + (bb * c.s.T + t0) * row,
                 src.begin() + (bb * c.s.T + t0 + n) * row);
    };
    take(c.q, a.q, qr, 0, 12), take(c.k, a.k, qr, 0, 12), take(c.v, a.v, vr, 0, 12);
    take(c.q, b.q, qr, 12, 18), take(c.k, b.k, qr, 12, 18), take(c.v, b.v, vr, 12, 18);
  }
  std::vector<float> Sa, Sb;
  const auto oa = a.ref(kChunk, &Sa);
  const auto ob = b.ref(kChunk, &Sb, Sa.data(), 12);
  std::vector<float> joined;
  for (int64_t bb = 0; bb < c.s.B; ++bb) {
    joined.insert(joined.end(), oa.begin() + bb * 12 * vr, oa.begin() + (bb + 1) * 12 * vr);
    joined.insert(joined.end(), ob.begin() + bb * 18 * vr, ob.begin() + (bb + 1) * 18 * vr);
  }
  EXPECT_LE(rel_diff(joined, whole), 1e-6);
  EXPECT_LE(rel_diff(Sb, S), 1e-6);
}

TEST(Retention, ChunkwiseIndependentOfChunkAndEqualsSteps) {
  for (int kind : {0, 1, 2}) {
    const RetCase c({2, 200, 3, 8, 16}, 200 + kind, kind);
    std::vector<float> S_step(c.state_size(), 0.0f);
    const auto steps = step_loop(c, S_step);
    std::vector<float> S_ref;
    c.ref(kChunk, &S_ref);
    EXPECT_LE(rel_diff(S_step, S_ref), 1e-5) << "gammas " << kind;
    for (int64_t chunk : {1, 7, 64, 512}) {
      SCOPED_TRACE(::testing::Message() << "gammas " << kind << " chunk " << chunk);
      std::vector<float> S;
      const auto out = c.fwd(kChunk, chunk, &S);
      EXPECT_LE(rel_diff(out, steps), 1e-5);
      EXPECT_LE(rel_diff(S, S_step), 1e-5);
    }
  }
}

TEST(Retention, ChunkwiseContinuesAcrossCalls) {
  // One call over [0, T) equals [0, T1) then [T1, T) with state_out -> state_in and pos0 = T1,
  // also from a nonzero initial state and with the state advanced in place; then steps go on.
  const RetCase c({2, 150, 3, 8, 16}, 300);
  const RetShape& s = c.s;
  const std::vector<float> S0 = uniform(c.state_size(), 301, -1.0f, 1.0f);
  const int64_t pos0 = 9, T1 = 67, T2 = s.T - T1, qr = s.H * s.dk, vr = s.H * s.dv;
  std::vector<float> S_whole, S_ref;
  const auto whole = c.fwd(kChunk, 32, &S_whole, S0.data(), pos0);
  EXPECT_LE(rel_diff(whole, c.ref(kChunk, &S_ref, S0.data(), pos0)), 5e-6);
  EXPECT_LE(rel_diff(S_whole, S_ref), 5e-6);

  auto part = [&](const RetCase& src, int64_t t0, int64_t n) {
    RetCase p = src;
    p.s.T = n;
    p.q.clear(), p.k.clear(), p.v.clear();
    for (int64_t b = 0; b < s.B; ++b) {
      auto take = [&](const std::vector<float>& from, std::vector<float>& to, int64_t row) {
        to.insert(to.end(), from.begin() + (b * s.T + t0) * row,
                  from.begin() + (b * s.T + t0 + n) * row);
      };
      take(src.q, p.q, qr), take(src.k, p.k, qr), take(src.v, p.v, vr);
    }
    return p;
  };
  auto rows = [&](const std::vector<float>& o, int64_t t0, int64_t n) {
    std::vector<float> r;
    for (int64_t b = 0; b < s.B; ++b)
      r.insert(r.end(), o.begin() + (b * s.T + t0) * vr, o.begin() + (b * s.T + t0 + n) * vr);
    return r;
  };
  const RetCase a = part(c, 0, T1), b = part(c, T1, T2);
  std::vector<float> S = S0;  // advanced in place: state_in == state_out
  std::vector<float> out_a(a.out_size()), out_b(b.out_size());
  cpu::retention_fwd(a.s, kChunk, 16, a.q.data(), a.k.data(), a.v.data(), a.gamma.data(),
                     out_a.data(), S.data(), S.data(), pos0);
  cpu::retention_fwd(b.s, kChunk, 64, b.q.data(), b.k.data(), b.v.data(), b.gamma.data(),
                     out_b.data(), S.data(), S.data(), pos0 + T1);
  EXPECT_LE(rel_diff(out_a, rows(whole, 0, T1)), 1e-5);
  EXPECT_LE(rel_diff(out_b, rows(whole, T1, T2)), 1e-5);
  EXPECT_LE(rel_diff(S, S_whole), 1e-5);

  // Decode the second part token by token after prefilling the first.
  std::vector<float> S2;
  a.fwd(kChunk, 64, &S2, S0.data(), pos0);
  EXPECT_LE(rel_diff(step_loop(b, S2, pos0 + T1), rows(whole, T1, T2)), 1e-5);
}

TEST(Retention, ParallelStateOutMatches) {
  // The state is form independent: a parallel prefill hands the same state to decoding.
  const RetCase c({2, 150, 3, 8, 16}, 310);
  std::vector<float> S_par, S_chunk;
  c.fwd(kPar, 0, &S_par);
  c.fwd(kChunk, 64, &S_chunk);
  EXPECT_LE(rel_diff(S_par, S_chunk), 1e-5);
}

TEST(Retention, FormsAgreeAfterHeadNormWithoutEps) {
  // q, k wide enough that many rows have |s_n| > 1, where the parallel factor differs.
  for (int kind : {0, 1, 2}) {
    const RetCase c({2, 200, 3, 8, 16}, 400 + kind, kind, 1.5f);
    const auto par = c.fwd(kPar, 0), chunk = c.fwd(kChunk, 48);
    std::vector<float> S(c.state_size(), 0.0f);
    const auto rec = step_loop(c, S);
    const auto ts = torchscale_recurrent(c);
    EXPECT_LE(rel_diff(rec, ts), 1e-5) << "gammas " << kind;     // same c_n: equal before the norm
    EXPECT_GT(rel_diff(par, chunk), 1e-2) << "gammas " << kind;  // the forms' scales differ
    const auto np = row_rms_norm(par, c.s.dv), nc = row_rms_norm(chunk, c.s.dv);
    EXPECT_LE(rel_diff(np, nc), 1e-5) << "gammas " << kind;
    EXPECT_LE(rel_diff(row_rms_norm(rec, c.s.dv), nc), 1e-5) << "gammas " << kind;
    EXPECT_LE(rel_diff(row_rms_norm(ts, c.s.dv), nc), 1e-5) << "gammas " << kind;
  }
}

TEST(Retention, DeterministicAcrossRunsAndThreads) {
  const RetCase c({2, 130, 3, 16, 32}, 500);
  const std::vector<float> dout = uniform(c.out_size(), 501, -1.0f, 1.0f);
  for (cpu::RetForm form : {kPar, kChunk}) {
    auto run = [&](int threads) {
      const int prev = num_threads();
      set_num_threads(threads);
      std::vector<float> out = c.fwd(form, 32), g(2 * c.q.size() + c.v.size(), 0.0f);
      cpu::retention_bwd(c.s, form, 32, c.q.data(), c.k.data(), c.v.data(), c.gamma.data(),
                         dout.data(), g.data(), g.data() + c.q.size(), g.data() + 2 * c.q.size());
      set_num_threads(prev);
      out.insert(out.end(), g.begin(), g.end());
      return out;
    };
    const auto one = run(1);
    EXPECT_EQ(one, run(2));
    EXPECT_EQ(run(2), run(2));
  }
}

TEST(Retention, RejectsBadArguments) {
  RetCase c({1, 4, 2, 4, 4}, 600);
  std::vector<float> out(c.out_size()), S(c.state_size(), 0.0f);
  auto fwd = [&](cpu::RetForm form, int64_t chunk, const float* sin, int64_t pos0) {
    cpu::retention_fwd(c.s, form, chunk, c.q.data(), c.k.data(), c.v.data(), c.gamma.data(),
                       out.data(), sin, nullptr, pos0);
  };
  EXPECT_THROW(fwd(kChunk, 0, nullptr, 0), pf::Error);
  EXPECT_THROW(fwd(kChunk, 4, nullptr, -1), pf::Error);
  EXPECT_THROW(fwd(kPar, 4, S.data(), 0), pf::Error);
  EXPECT_THROW(fwd(kPar, 4, nullptr, 3), pf::Error);
  c.gamma[1] = 1.0f;
  EXPECT_THROW(fwd(kChunk, 4, nullptr, 0), pf::Error);

  NoGradScope ng;
  Var q = random_var({1, 4, 2, 4}, 1), k = random_var({1, 4, 2, 4}, 2);
  Var v = random_var({1, 4, 2, 6}, 3), k_bad = random_var({1, 4, 2, 5}, 4);
  Var v_bad = random_var({1, 5, 2, 6}, 5);
  const Tensor g = Tensor::from({2}, {0.9f, 0.5f}), g_bad = Tensor::from({3}, {0.9f, 0.5f, 0.7f});
  EXPECT_NO_THROW(retention(q, k, v, g, RetForm::Chunkwise, 2));
  EXPECT_THROW(retention(q, k_bad, v, g, RetForm::Chunkwise, 2), pf::Error);
  EXPECT_THROW(retention(q, k, v_bad, g, RetForm::Chunkwise, 2), pf::Error);
  EXPECT_THROW(retention(q, k, v, g_bad, RetForm::Parallel, 2), pf::Error);
  EXPECT_THROW(retention(q, k, v, g, RetForm::Chunkwise, 0), pf::Error);
}

// ---- backward ------------------------------------------------------------------------------

namespace {
// Un-normalised R (B, T, H, dv) in double from double inputs, for finite differences.
struct DoubleIn {
  std::vector<double> q, k, v;
};
std::vector<double> retention_R(const RetShape& s, const std::vector<float>& gamma,
                                const DoubleIn& in) {
  std::vector<double> R(s.B * s.T * s.H * s.dv, 0.0);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h)
      for (int64_t n = 0; n < s.T; ++n) {
        double* Rn = R.data() + ((b * s.T + n) * s.H + h) * s.dv;
        double dec = 1.0;  // g^(n-m), m walking down from n
        for (int64_t m = n; m >= 0; --m, dec *= gamma[h]) {
          double qk = 0.0;
          for (int64_t d = 0; d < s.dk; ++d)
            qk += in.q[((b * s.T + n) * s.H + h) * s.dk + d] *
                  in.k[((b * s.T + m) * s.H + h) * s.dk + d];
          for (int64_t e = 0; e < s.dv; ++e)
            Rn[e] += dec * qk * in.v[((b * s.T + m) * s.H + h) * s.dv + e];
        }
      }
  return R;
}
// The forms' row factors (B, T, H) at the given inputs, in double.
std::vector<double> row_factors(const RetShape& s, const std::vector<float>& gamma,
                                const DoubleIn& in, cpu::RetForm form, int* big_rows) {
  std::vector<double> c(s.B * s.T * s.H);
  *big_rows = 0;
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h) {
      double rs = 0.0;
      for (int64_t n = 0; n < s.T; ++n) {
        rs = rs * gamma[h] + 1.0;
        double sn = 0.0, dec = 1.0;
        for (int64_t m = n; m >= 0; --m, dec *= gamma[h])
          for (int64_t d = 0; d < s.dk; ++d)
            sn += dec * in.q[((b * s.T + n) * s.H + h) * s.dk + d] *
                  in.k[((b * s.T + m) * s.H + h) * s.dk + d];
        sn /= std::sqrt(rs);
        *big_rows += std::fabs(sn) > 1.0;
        c[(b * s.T + n) * s.H + h] =
            1.0 / std::sqrt(rs) / (form == kPar ? std::max(std::fabs(sn), 1.0) : 1.0);
      }
    }
  return c;
}
}  // namespace

TEST(Retention, BackwardMatchesDoubleFiniteDifferences) {
  // Loss sum_n c_n R_n . W_n with c_n fixed at the unperturbed inputs (the detached factors).
  // T = 150 crosses the chunk triangle's 64-row blocks and the parallel form's 128 tiles; the
  // parallel case uses q, k wide enough that the max(|s_n|, 1) branch is taken on many rows.
  for (cpu::RetForm form : {kChunk, kPar}) {
    const RetCase c({1, 150, 2, 8, 16}, 700, 2, form == kPar ? 1.5f : 1.0f);
    const RetShape& s = c.s;
    const std::vector<float> W = uniform(c.out_size(), 701, -1.0f, 1.0f);
    auto dbl = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
    DoubleIn in{dbl(c.q), dbl(c.k), dbl(c.v)};
    int big = 0;
    const std::vector<double> cf = row_factors(s, c.gamma, in, form, &big);
    if (form == kPar) {
      EXPECT_GT(big, s.T / 4) << "too few rows with |s_n| > 1";
      EXPECT_LT(big, s.B * s.H * s.T) << "no rows with |s_n| <= 1";
    }
    auto loss = [&]() {
      const auto R = retention_R(s, c.gamma, in);
      double l = 0.0;
      for (size_t i = 0; i < R.size(); ++i) l += cf[i / s.dv] * R[i] * W[i];
      return l;
    };
    for (int64_t chunk : form == kPar ? std::vector<int64_t>{0} : std::vector<int64_t>{128, 48}) {
      SCOPED_TRACE(::testing::Message()
                   << (form == kPar ? "parallel" : "chunkwise") << " chunk " << chunk);
      std::vector<float> dq(c.q.size()), dk(c.k.size()), dv(c.v.size());
      cpu::retention_bwd(s, form, chunk, c.q.data(), c.k.data(), c.v.data(), c.gamma.data(),
                         W.data(), dq.data(), dk.data(), dv.data());
      struct Check {
        std::vector<double>* param;
        const std::vector<float>* grad;
        const char* name;
      };
      for (const Check& ck :
           {Check{&in.q, &dq, "q"}, Check{&in.k, &dk, "k"}, Check{&in.v, &dv, "v"}}) {
        const int64_t n = static_cast<int64_t>(ck.param->size());
        for (int64_t i = 3; i < n; i += n / 17) {
          double& x = (*ck.param)[i];
          const double orig = x,
                       h = 1e-4;  // the loss is linear in each input: exact up to rounding
          x = orig + h;
          const double lp = loss();
          x = orig - h;
          const double lm = loss();
          x = orig;
          const double num = (lp - lm) / (2 * h), ana = (*ck.grad)[i];
          EXPECT_NEAR(ana, num, 1e-4 + 1e-4 * std::fabs(num)) << ck.name << "[" << i << "]";
        }
      }
    }
  }
}

TEST(Retention, OpGradcheckThroughTape) {
  // Chunkwise directly (its factors do not depend on the inputs); both forms through the
  // head norm without eps, a scale-invariant loss whose gradient is the detached one.
  const int64_t B = 2, T = 11, H = 2, dk = 3, dv = 5;
  const Tensor g = Tensor::from({H}, {0.9f, 0.6f});
  Var q = random_var({B, T, H, dk}, 801), k = random_var({B, T, H, dk}, 802, -1.5f, 1.5f);
  Var v = random_var({B, T, H, dv}, 803);
  for (int64_t chunk : {4, 1, 16}) {
    EXPECT_TRUE(gradcheck({q, k, v},
                          [&](const std::vector<Var>& in) {
                            return retention(in[0], in[1], in[2], g, RetForm::Chunkwise, chunk);
                          }))
        << "chunk " << chunk;
  }
  for (RetForm form : {RetForm::Chunkwise, RetForm::Parallel}) {
    EXPECT_TRUE(gradcheck({q, k, v}, [&](const std::vector<Var>& in) {
      return rmsnorm(retention(in[0], in[1], in[2], g, form, 4), Var(), 0.0f);
    })) << (form == RetForm::Parallel ? "parallel" : "chunkwise");
  }
}

TEST(Retention, BackwardSkipsNullAndAccumulates) {
  const RetCase c({1, 70, 2, 8, 16}, 900);
  const std::vector<float> dout = uniform(c.out_size(), 901, -1.0f, 1.0f);
  for (cpu::RetForm form : {kChunk, kPar}) {
    std::vector<float> dq(c.q.size(), 0.0f), dk(c.k.size(), 0.0f), dv(c.v.size(), 0.0f);
    cpu::retention_bwd(c.s, form, 16, c.q.data(), c.k.data(), c.v.data(), c.gamma.data(),
                       dout.data(), dq.data(), dk.data(), dv.data());
    // One at a time, onto buffers of ones.
    for (int which = 0; which < 3; ++which) {
      std::vector<float> g(which == 2 ? c.v.size() : c.q.size(), 1.0f);
      cpu::retention_bwd(c.s, form, 16, c.q.data(), c.k.data(), c.v.data(), c.gamma.data(),
                         dout.data(), which == 0 ? g.data() : nullptr,
                         which == 1 ? g.data() : nullptr, which == 2 ? g.data() : nullptr);
      const std::vector<float>& want = which == 0 ? dq : which == 1 ? dk : dv;
      for (size_t i = 0; i < g.size(); ++i) ASSERT_NEAR(g[i], want[i] + 1.0f, 1e-5) << which;
    }
  }
}

// ---- long sequences ------------------------------------------------------------------------

using pf::proc_status_kib;
using pf::reset_peak_rss;

TEST(Retention, LongParallelWithoutQuadraticMemory) {
  const RetCase c({1, 4096, 1, 64, 64}, 1000, 0, 0.5f);
  const RetShape& s = c.s;
  std::vector<float> out(c.out_size(), NAN);
  const bool can_measure = reset_peak_rss();
  const long rss_before = proc_status_kib("VmRSS:");
  cpu::retention_fwd(s, kPar, 0, c.q.data(), c.k.data(), c.v.data(), c.gamma.data(), out.data());
  const long peak_after = proc_status_kib("VmHWM:");
  if (can_measure && rss_before > 0 && peak_after > 0) {
    // A (T, T) f32 mask or score matrix would be 64 MiB; tiles need well under 1 MiB.
    EXPECT_LT(peak_after - rss_before, 16 * 1024)
        << "parallel retention peak memory grew by " << (peak_after - rss_before) << " KiB";
  }
  // Spot rows on and around tile edges against the definition, row by row in double.
  const double g = c.gamma[0];
  for (int64_t n : {0, 1, 127, 128, 129, 2047, 4095}) {
    double rs = 0.0, sn = 0.0;
    for (int64_t t = 0; t <= n; ++t) rs = rs * g + 1.0;
    std::vector<double> o(s.dv, 0.0);
    for (int64_t m = 0; m <= n; ++m) {
      double qk = 0.0;
      for (int64_t d = 0; d < s.dk; ++d) qk += double(c.q[n * s.dk + d]) * c.k[m * s.dk + d];
      const double w = qk * std::pow(g, n - m) / std::sqrt(rs);
      sn += w;
      for (int64_t e = 0; e < s.dv; ++e) o[e] += w * c.v[m * s.dv + e];
    }
    for (int64_t e = 0; e < s.dv; ++e)
      EXPECT_NEAR(out[n * s.dv + e], o[e] / std::max(std::fabs(sn), 1.0), 1e-5) << "row " << n;
  }
  // And the whole sequence against the chunkwise form after the head norm.
  EXPECT_LE(rel_diff(row_rms_norm(out, s.dv), row_rms_norm(c.fwd(kChunk, 128), s.dv)), 1e-5);
}
