// The tiled attention kernel against attention_naive and against a scalar double
// reference written here, across tile boundaries (tiles are 64), grouped kv heads,
// query offsets (KV cache), the lse output, the backward, and a long sequence.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "base/memory_stats.h"
#include "base/rng.h"
#include "gradcheck.h"
#include "kernels/cpu/attention.h"

using pf::cpu::attn_shape;
using pf::cpu::AttnShape;

namespace {

std::vector<float> random_vec(int64_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  pf::Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = rng.uniform(lo, hi);
  return v;
}

struct RefOut {
  std::vector<double> out;  // (B, Tq, H, hd)
  std::vector<double> lse;  // (B, H, Tq)
};

// One query row: softmax over keys 0..q_pos0+i of scale * q.k, times v; contiguous layouts.
void ref_row(const AttnShape& s, const float* q, const float* k, const float* v, int64_t b,
             int64_t h, int64_t i, double* out, double* lse) {
  const int64_t g = h / (s.H / s.KV);
  // Written out from the mask's definition rather than taken from the shape's helpers.
  const int64_t nvis = s.see_all ? s.Tk : s.q_pos0 + i + 1;
  const float* qi = q + ((b * s.Tq + i) * s.H + h) * s.hd;
  std::vector<double> p(nvis);
  double mx = -1e300;
  for (int64_t j = 0; j < nvis; ++j) {
    const float* kj = k + ((b * s.Tk + j) * s.KV + g) * s.hd;
    double acc = 0;
    for (int64_t d = 0; d < s.hd; ++d) acc += double(qi[d]) * kj[d];
    p[j] = acc / std::sqrt(double(s.hd));
    mx = std::max(mx, p[j]);
  }
  double z = 0;
  for (int64_t j = 0; j < nvis; ++j) z += (p[j] = std::exp(p[j] - mx));
  *lse = mx + std::log(z);
  for (int64_t d = 0; d < s.hd; ++d) {
    double acc = 0;
    for (int64_t j = 0; j < nvis; ++j) acc += p[j] * v[((b * s.Tk + j) * s.KV + g) * s.hd + d];
    out[d] = acc / z;
  }
}

RefOut ref_attention(const AttnShape& s, const float* q, const float* k, const float* v) {
  RefOut r{std::vector<double>(s.B * s.Tq * s.H * s.hd), std::vector<double>(s.B * s.H * s.Tq)};
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h)
      for (int64_t i = 0; i < s.Tq; ++i)
        ref_row(s, q, k, v, b, h, i, r.out.data() + ((b * s.Tq + i) * s.H + h) * s.hd,
                r.lse.data() + (b * s.H + h) * s.Tq + i);
  return r;
}

// Max |got - want|, to report one number per comparison.
template <typename A, typename B>
double max_abs_diff(const std::vector<A>& got, const std::vector<B>& want) {
  EXPECT_EQ(got.size(), want.size());
  double worst = 0;
  for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
    const double e = std::fabs(double(got[i]) - double(want[i]));
    worst = std::isnan(e) ? INFINITY : std::max(worst, e);
  }
  return worst;
}

// (T, KV, hd); H = 4, B = 2 throughout.
using Case = std::tuple<int64_t, int64_t, int64_t>;

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  const auto [T, KV, hd] = info.param;
  return "T" + std::to_string(T) + "_KV" + std::to_string(KV) + "_hd" + std::to_string(hd);
}

class AttentionFwd : public ::testing::TestWithParam<Case> {};

}  // namespace

TEST_P(AttentionFwd, MatchesNaiveAndReference) {
  const auto [T, KV, hd] = GetParam();
  const int64_t B = 2, H = 4;
  const AttnShape s = attn_shape(B, T, T, H, KV, hd, 0);
  const uint64_t seed = T * 1000 + KV * 10 + hd;
  // q, k in [-2, 2] give peaky softmaxes, so the running max rescaling matters.
  const auto q = random_vec(B * T * H * hd, seed, -2.0f, 2.0f);
  const auto k = random_vec(B * T * KV * hd, seed + 1, -2.0f, 2.0f);
  const auto v = random_vec(B * T * KV * hd, seed + 2);
  std::vector<float> out(q.size(), NAN), lse(B * H * T, NAN), naive(q.size(), NAN);
  pf::cpu::attention_fwd(s, q.data(), k.data(), v.data(), out.data(), lse.data());
  pf::cpu::attention_naive(s, q.data(), k.data(), v.data(), naive.data());
  const RefOut ref = ref_attention(s, q.data(), k.data(), v.data());

  EXPECT_LT(max_abs_diff(naive, ref.out), 1e-6) << "attention_naive disagrees with the test";
  EXPECT_LT(max_abs_diff(out, ref.out), 2e-5);
  EXPECT_LT(max_abs_diff(out, naive), 2e-5);
  EXPECT_LT(max_abs_diff(lse, ref.lse), 2e-5);

  // lse may be null.
  std::vector<float> out2(q.size(), NAN);
  pf::cpu::attention_fwd(s, q.data(), k.data(), v.data(), out2.data(), nullptr);
  EXPECT_EQ(out2, out);
}

// Tiles are 64 wide: 63/64/65 sit on the first boundary, 150 spans three tiles.
INSTANTIATE_TEST_SUITE_P(TileBoundaries, AttentionFwd,
                         ::testing::Combine(::testing::Values<int64_t>(1, 63, 64, 65, 150),
                                            ::testing::Values<int64_t>(4, 2, 1),
                                            ::testing::Values<int64_t>(16, 24, 64, 128)),
                         case_name);

TEST(Attention, QueryOffsetMatchesTailOfFullRun) {
  // A KV cache step: Tq queries at positions q_pos0 .. Tk-1 over all Tk keys must equal the
  // last Tq rows of a full causal run. Offsets chosen to straddle 64-wide tiles unaligned.
  const int64_t B = 2, H = 4, KV = 2, hd = 16;
  for (auto [Tk, Tq] : {std::pair<int64_t, int64_t>{150, 20}, {200, 70}, {65, 1}, {130, 64}}) {
    const int64_t pos0 = Tk - Tq;
    const auto qfull = random_vec(B * Tk * H * hd, Tk + 1, -2.0f, 2.0f);
    const auto k = random_vec(B * Tk * KV * hd, Tk + 2, -2.0f, 2.0f);
    const auto v = random_vec(B * Tk * KV * hd, Tk + 3);
    // The queries of the offset run: the last Tq rows of each batch entry.
    std::vector<float> q(B * Tq * H * hd);
    for (int64_t b = 0; b < B; ++b)
      std::copy(qfull.begin() + (b * Tk + pos0) * H * hd, qfull.begin() + (b + 1) * Tk * H * hd,
                q.begin() + b * Tq * H * hd);

    const AttnShape sf = attn_shape(B, Tk, Tk, H, KV, hd, 0);
    std::vector<float> full(qfull.size()), lse_full(B * H * Tk);
    pf::cpu::attention_fwd(sf, qfull.data(), k.data(), v.data(), full.data(), lse_full.data());

    const AttnShape s = attn_shape(B, Tq, Tk, H, KV, hd, pos0);
    std::vector<float> out(q.size(), NAN), lse(B * H * Tq, NAN), naive(q.size(), NAN);
    pf::cpu::attention_fwd(s, q.data(), k.data(), v.data(), out.data(), lse.data());
    pf::cpu::attention_naive(s, q.data(), k.data(), v.data(), naive.data());
    const RefOut ref = ref_attention(s, q.data(), k.data(), v.data());

    SCOPED_TRACE("Tk=" + std::to_string(Tk) + " Tq=" + std::to_string(Tq));
    EXPECT_LT(max_abs_diff(out, ref.out), 2e-5);
    EXPECT_LT(max_abs_diff(out, naive), 2e-5);
    EXPECT_LT(max_abs_diff(lse, ref.lse), 2e-5);
    double worst = 0, worst_lse = 0;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < Tq; ++i) {
        for (int64_t x = 0; x < H * hd; ++x)
          worst = std::max<double>(worst, std::fabs(out[(b * Tq + i) * H * hd + x] -
                                                    full[(b * Tk + pos0 + i) * H * hd + x]));
        for (int64_t h = 0; h < H; ++h)
          worst_lse = std::max<double>(worst_lse, std::fabs(lse[(b * H + h) * Tq + i] -
                                                            lse_full[(b * H + h) * Tk + pos0 + i]));
      }
    EXPECT_LT(worst, 2e-5);
    EXPECT_LT(worst_lse, 2e-5);
  }
}

TEST(Attention, RejectsBadShapes) {
  std::vector<float> buf(4 * 64 * 8, 0.0f), out(buf.size());
  EXPECT_ANY_THROW(pf::cpu::attention_fwd(attn_shape(1, 4, 4, 3, 2, 8, 0), buf.data(), buf.data(),
                                          buf.data(), out.data(), nullptr));  // heads not divisible
  EXPECT_ANY_THROW(pf::cpu::attention_fwd(attn_shape(1, 4, 8, 1, 1, 8, 5), buf.data(), buf.data(),
                                          buf.data(), out.data(),
                                          nullptr));  // queries reach past the last key
  std::vector<float> big(512), bigout(512);
  EXPECT_ANY_THROW(pf::cpu::attention_fwd(attn_shape(1, 1, 1, 1, 1, 512, 0), big.data(), big.data(),
                                          big.data(), bigout.data(), nullptr));
}

namespace {

// Backward of loss = sum(out * R) via attention_bwd, then central differences per element.
void check_bwd_fd(const AttnShape& s, uint64_t seed) {
  const int64_t nq = s.B * s.Tq * s.H * s.hd, nk = s.B * s.Tk * s.KV * s.hd;
  auto q = random_vec(nq, seed, -1.5f, 1.5f);
  auto k = random_vec(nk, seed + 1, -1.5f, 1.5f);
  auto v = random_vec(nk, seed + 2);
  const auto R = random_vec(nq, seed + 3);
  std::vector<float> out(nq), lse(s.B * s.H * s.Tq);
  pf::cpu::attention_fwd(s, q.data(), k.data(), v.data(), out.data(), lse.data());
  // Pre-filled gradients: the kernel accumulates, so the result is 0.5 + d.
  std::vector<float> dq(nq, 0.5f), dk(nk, 0.5f), dv(nk, 0.5f);
  pf::cpu::attention_bwd(s, q.data(), k.data(), v.data(), out.data(), lse.data(), R.data(),
                         dq.data(), dk.data(), dv.data());

  // Numeric side on one thread (see gradcheck.h); the backward above ran threaded.
  pf::test_util::SingleThreadScope single;
  std::vector<float> tmp(nq);
  auto loss = [&]() {
    pf::cpu::attention_fwd(s, q.data(), k.data(), v.data(), tmp.data(), nullptr);
    double acc = 0;
    for (int64_t i = 0; i < nq; ++i) acc += double(tmp[i]) * R[i];
    return acc;
  };
  const float eps = 1e-2f;
  struct Input {
    const char* name;
    std::vector<float>* x;
    const std::vector<float>* g;
  };
  for (Input in : {Input{"dq", &q, &dq}, Input{"dk", &k, &dk}, Input{"dv", &v, &dv}}) {
    int bad = 0;
    double worst = 0;
    for (size_t i = 0; i < in.x->size(); ++i) {
      float& xi = (*in.x)[i];
      const float orig = xi;
      xi = orig + eps;
      const double lp = loss();
      xi = orig - eps;
      const double lm = loss();
      xi = orig;
      const double num = (lp - lm) / (double(orig + eps) - double(orig - eps));
      const double ana = double((*in.g)[i]) - 0.5;
      const double err = std::fabs(ana - num);
      worst = std::max(worst, err);
      if (err > 2e-3 + 2e-2 * std::fabs(num)) {
        if (bad < 5)
          ADD_FAILURE() << in.name << "[" << i << "]: analytic " << ana << " numeric " << num;
        ++bad;
      }
    }
    EXPECT_EQ(bad, 0) << in.name << " worst abs err " << worst;
  }
}

}  // namespace

TEST(Attention, BackwardMatchesFiniteDifferencesGrouped) {
  // T = 70 crosses one key/query tile boundary; 4 query heads share 2 kv heads.
  check_bwd_fd(attn_shape(1, 70, 70, 4, 2, 4, 0), 100);
}

TEST(Attention, BackwardMatchesFiniteDifferencesWithQueryOffset) {
  // Queries at positions 50..69 over 70 keys: keys past a tile start but before q_pos0.
  check_bwd_fd(attn_shape(1, 20, 70, 2, 1, 4, 50), 200);
}

TEST(Attention, BackwardVectorPathsMatchFiniteDifferences) {
  // Head dims that are multiples of 16 take the register-blocked path without padding:
  // 32 uses 4-row blocks, 128 uses 2-row blocks.
  check_bwd_fd(attn_shape(1, 66, 66, 2, 1, 32, 0), 400);
  check_bwd_fd(attn_shape(1, 5, 5, 2, 2, 128, 0), 500);
}

TEST(Attention, BackwardSingleKvHeadAndBatch) {
  check_bwd_fd(attn_shape(2, 9, 9, 3, 1, 6, 0), 300);
}

using pf::current_rss_kib;
using pf::peak_rss_kib;
using pf::reset_peak_rss;

TEST(Attention, LongSequenceWithoutQuadraticMemory) {
  const int64_t T = 4096, hd = 64;
  const AttnShape s = attn_shape(1, T, T, 1, 1, hd, 0);
  const auto q = random_vec(T * hd, 400, -1.0f, 1.0f);
  const auto k = random_vec(T * hd, 401, -1.0f, 1.0f);
  const auto v = random_vec(T * hd, 402);
  std::vector<float> out(T * hd, NAN), lse(T, NAN);

  const bool can_measure = reset_peak_rss();
  const long rss_before = current_rss_kib();
  pf::cpu::attention_fwd(s, q.data(), k.data(), v.data(), out.data(), lse.data());
  const long peak_after = peak_rss_kib();
  if (can_measure && rss_before > 0 && peak_after > 0) {
    // A (T, T) f32 score matrix would be 64 MiB; the tiles need well under 1 MiB.
    EXPECT_LT(peak_after - rss_before, 16 * 1024)
        << "attention_fwd peak memory grew by " << (peak_after - rss_before) << " KiB";
  }

  // Spot rows on and around tile edges, and the last row (which sees all 4096 keys).
  for (int64_t i : {0, 1, 63, 64, 65, 1000, 2047, 4095}) {
    std::vector<double> want(hd);
    double want_lse = 0;
    ref_row(s, q.data(), k.data(), v.data(), 0, 0, i, want.data(), &want_lse);
    // attention_naive for this single row: one query at position i.
    AttnShape s1 = attn_shape(1, 1, T, 1, 1, hd, i);
    std::vector<float> naive(hd);
    pf::cpu::attention_naive(s1, q.data() + i * hd, k.data(), v.data(), naive.data());
    const std::vector<float> got(out.begin() + i * hd, out.begin() + (i + 1) * hd);
    EXPECT_LT(max_abs_diff(got, want), 2e-5) << "row " << i;
    EXPECT_LT(max_abs_diff(got, naive), 2e-5) << "row " << i;
    EXPECT_NEAR(lse[i], want_lse, 1e-4) << "row " << i;
  }
}

TEST(Attention, DecodeRowsOverALongCacheMatchNaive) {
  // One to four query rows at the end of a cache take the decode path; 1100 keys span three
  // key ranges whose partial softmaxes are merged.
  for (int64_t Tq : {1, 2, 4})
    for (int64_t Tk : {150, 1100})
      for (int64_t hd : {16, 64}) {
        const int64_t B = 2, H = 4, KV = 2;
        const AttnShape s = attn_shape(B, Tq, Tk, H, KV, hd, Tk - Tq);
        const auto q = random_vec(B * Tq * H * hd, Tk + Tq, -2.0f, 2.0f);
        const auto k = random_vec(B * Tk * KV * hd, Tk + 1, -2.0f, 2.0f);
        const auto v = random_vec(B * Tk * KV * hd, Tk + 2);
        std::vector<float> out(q.size()), naive(q.size()), lse(B * H * Tq);
        pf::cpu::attention_fwd(s, q.data(), k.data(), v.data(), out.data(), lse.data());
        pf::cpu::attention_naive(s, q.data(), k.data(), v.data(), naive.data());
        const RefOut ref = ref_attention(s, q.data(), k.data(), v.data());
        EXPECT_LT(max_abs_diff(out, naive), 2e-5) << "Tq " << Tq << " Tk " << Tk << " hd " << hd;
        EXPECT_LT(max_abs_diff(lse, ref.lse), 2e-5);
      }
}

namespace {

// (mask, Tq, Tk): cross-attention shapes with Tq != Tk for every mask mode.
using MaskCase = std::tuple<pf::cpu::AttnMask, int64_t, int64_t>;

pf::cpu::AttnShape mask_shape(const MaskCase& c, int64_t B, int64_t H, int64_t KV, int64_t hd) {
  const auto [mask, Tq, Tk] = c;
  // Causal: queries in the middle of the keys (keys after the last query are never seen).
  const int64_t pos0 = mask == pf::cpu::AttnMask::Causal ? (Tk - Tq) / 2 : 0;
  return pf::cpu::attn_shape(B, Tq, Tk, H, KV, hd, mask, pos0);
}

}  // namespace

TEST(AttentionMasks, EveryMaskMatchesNaiveAndReferenceWithTqNotTk) {
  using pf::cpu::AttnMask;
  for (AttnMask mask : {AttnMask::Causal, AttnMask::RightAligned, AttnMask::None})
    for (auto [Tq, Tk] :
         {std::pair<int64_t, int64_t>{1, 200}, {3, 70}, {64, 150}, {70, 300}, {130, 131}})
      for (int64_t hd : {16, 24}) {
        if (mask == AttnMask::None && Tq > Tk) continue;
        const int64_t B = 2, H = 4, KV = 2;
        const AttnShape s = mask_shape({mask, Tq, Tk}, B, H, KV, hd);
        const uint64_t seed = Tq * 7 + Tk * 13 + hd + static_cast<uint64_t>(mask) * 1000;
        const auto q = random_vec(B * Tq * H * hd, seed, -2.0f, 2.0f);
        const auto k = random_vec(B * Tk * KV * hd, seed + 1, -2.0f, 2.0f);
        const auto v = random_vec(B * Tk * KV * hd, seed + 2);
        std::vector<float> out(q.size(), NAN), lse(B * H * Tq, NAN), naive(q.size(), NAN);
        pf::cpu::attention_fwd(s, q.data(), k.data(), v.data(), out.data(), lse.data());
        pf::cpu::attention_naive(s, q.data(), k.data(), v.data(), naive.data());
        const RefOut ref = ref_attention(s, q.data(), k.data(), v.data());
        SCOPED_TRACE("mask " + std::to_string(static_cast<int>(mask)) + " Tq " +
                     std::to_string(Tq) + " Tk " + std::to_string(Tk) + " hd " +
                     std::to_string(hd));
        EXPECT_LT(max_abs_diff(naive, ref.out), 1e-6);
        EXPECT_LT(max_abs_diff(out, ref.out), 2e-5);
        EXPECT_LT(max_abs_diff(lse, ref.lse), 2e-5);
      }
}

TEST(AttentionMasks, RightAlignedIsCausalFromTheEnd) {
  // Latent i at absolute position Tk - Tq + i sees keys <= Tk - Tq + i.
  const AttnShape r = attn_shape(1, 8, 40, 2, 1, 16, pf::cpu::AttnMask::RightAligned);
  EXPECT_EQ(r.q_pos0, 32);
  EXPECT_EQ(r.last_key(0), 32);
  EXPECT_EQ(r.last_key(7), 39);
  const AttnShape n = attn_shape(1, 8, 40, 2, 1, 16, pf::cpu::AttnMask::None);
  EXPECT_EQ(n.last_key(0), 39);
  EXPECT_EQ(n.first_row_seeing(39), 0);
  // None with more queries than keys is allowed (every query sees every key).
  std::vector<float> q(1 * 50 * 1 * 16, 0.5f), kv(1 * 4 * 1 * 16, 0.25f), out(q.size());
  EXPECT_NO_THROW(pf::cpu::attention_fwd(attn_shape(1, 50, 4, 1, 1, 16, pf::cpu::AttnMask::None),
                                         q.data(), kv.data(), kv.data(), out.data(), nullptr));
  EXPECT_FLOAT_EQ(out[49 * 16 + 3], 0.25f);
}

TEST(AttentionMasks, BackwardMatchesFiniteDifferencesForEveryMask) {
  using pf::cpu::AttnMask;
  // Tq != Tk; 70 keys cross a tile boundary.
  check_bwd_fd(mask_shape({AttnMask::Causal, 12, 70}, 1, 2, 1, 4), 600);
  check_bwd_fd(mask_shape({AttnMask::RightAligned, 12, 70}, 1, 2, 1, 4), 700);
  check_bwd_fd(mask_shape({AttnMask::None, 12, 70}, 1, 4, 2, 4), 800);
  check_bwd_fd(mask_shape({AttnMask::None, 66, 20}, 1, 2, 2, 32), 900);
}

TEST(AttentionMasks, TapedOpGradientsForCrossAttention) {
  using pf::cpu::AttnMask;
  for (AttnMask mask : {AttnMask::Causal, AttnMask::RightAligned, AttnMask::None}) {
    const int64_t B = 2, Tq = 5, Tk = 9, H = 2, KV = 1, hd = 8;
    const pf::Var q = pf::test_util::random_var({B, Tq, H, hd}, 11, -1.5f, 1.5f);
    const pf::Var k = pf::test_util::random_var({B, Tk, KV, hd}, 12, -1.5f, 1.5f);
    const pf::Var v = pf::test_util::random_var({B, Tk, KV, hd}, 13);
    const int64_t pos0 = mask == AttnMask::Causal ? 2 : 0;
    EXPECT_TRUE(pf::test_util::gradcheck(
        {q, k, v},
        [&](const std::vector<pf::Var>& x) { return pf::attention(x[0], x[1], x[2], mask, pos0); }))
        << "mask " << static_cast<int>(mask);
  }
}
