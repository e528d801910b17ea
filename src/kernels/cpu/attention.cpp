#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "base/error.h"
#include "kernels/cpu/simd.h"

namespace pf::cpu {

// Tiles are 64 queries x 64 keys. Within a tile, score rows are computed in register
// blocks of R rows x 64 keys and value rows in R rows x hd, with hd = 16 * NV; head
// dims that are not a multiple of 16 are zero-padded (dot products are unchanged).
namespace {
using simd::v16;
constexpr int64_t kTile = 64;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// kt(hd, 64) = transpose of rows k[0..n) (row stride ts); columns >= n are zero.
void transpose_tile(const float* k, int64_t ts, int64_t n, int64_t hd, float* kt) {
  for (int64_t d = 0; d < hd; ++d) {
    float* row = kt + d * kTile;
    for (int64_t j = 0; j < n; ++j) row[j] = k[j * ts + d];
    for (int64_t j = n; j < kTile; ++j) row[j] = 0.0f;
  }
}

// s(R, 64) = scale * rows(R, hd) . kt(hd, 64)
template <int R>
inline void scores_tile(const float* const* rows, const float* kt, int64_t hd, float scale,
                        float* s) {
  v16 acc[R][4];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < 4; ++c) acc[r][c] = simd::splat(0.0f);
  for (int64_t d = 0; d < hd; ++d) {
    const float* kd = kt + d * kTile;
    const v16 k0 = simd::load(kd), k1 = simd::load(kd + 16), k2 = simd::load(kd + 32),
              k3 = simd::load(kd + 48);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const v16 q = simd::splat(rows[r][d]);
      acc[r][0] += q * k0;
      acc[r][1] += q * k1;
      acc[r][2] += q * k2;
      acc[r][3] += q * k3;
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < 4; ++c) simd::store(s + r * kTile + 16 * c, acc[r][c] * scale);
}

// out_r(hd) += sum_{j<n} p(r, j) * v_j for R rows; v rows have stride ts.
template <int NV, int R>
inline void weighted_rows(const float* p, const float* v, int64_t ts, int64_t n,
                          float* const* out) {
  v16 acc[R][NV];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < NV; ++c) acc[r][c] = simd::load(out[r] + 16 * c);
  for (int64_t j = 0; j < n; ++j) {
    const float* vj = v + j * ts;
    v16 vv[NV];
    for (int c = 0; c < NV; ++c) vv[c] = simd::load(vj + 16 * c);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const v16 pr = simd::splat(p[r * kTile + j]);
      for (int c = 0; c < NV; ++c) acc[r][c] += pr * vv[c];
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < NV; ++c) simd::store(out[r] + 16 * c, acc[r][c]);
}

// dst_j(hd) += sum_r w(r, j) * rows_r for j < n; dst rows are contiguous (stride hd).
template <int NV, int R>
inline void outer_accumulate(const float* w, const float* const* rows, int64_t n, float* dst) {
  v16 x[R][NV];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < NV; ++c) x[r][c] = simd::load(rows[r] + 16 * c);
  for (int64_t j = 0; j < n; ++j) {
    float* dj = dst + j * NV * 16;
    v16 a[NV];
    for (int c = 0; c < NV; ++c) a[c] = simd::load(dj + 16 * c);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const v16 wr = simd::splat(w[r * kTile + j]);
      for (int c = 0; c < NV; ++c) a[c] += wr * x[r][c];
    }
    for (int c = 0; c < NV; ++c) simd::store(dj + 16 * c, a[c]);
  }
}

// Masks keys after each row's last visible key qpos[r] (s = -inf), and the tile's padding.
template <int R>
inline void causal_mask(float* s, const int64_t* qpos, int64_t j0, int64_t nj) {
  for (int r = 0; r < R; ++r) {
    const int64_t last = std::min(nj, qpos[r] - j0 + 1);  // visible keys in this tile
    for (int64_t j = std::max<int64_t>(last, 0); j < kTile; ++j) s[r * kTile + j] = kNegInf;
  }
}

struct FwdState {
  float* s;    // (R, 64) scores, then probabilities
  float* m;    // (64) running max per row of the query tile
  float* l;    // (64) running sum per row
  float* acc;  // (64, hd) unnormalised output rows
};

template <int NV, int R>
void fwd_rows(const AttnShape& sh, int64_t hdp, const float* qbase, int64_t q_ts, const float* kt,
              const float* vtile, int64_t v_ts, int64_t j0, int64_t nj, int64_t i0, int64_t i,
              FwdState& st) {
  const float* rows[R];
  float* outs[R];
  int64_t qpos[R];
  for (int r = 0; r < R; ++r) {
    rows[r] = qbase + (i0 + i + r) * q_ts;
    outs[r] = st.acc + (i + r) * hdp;
    qpos[r] = sh.last_key(i0 + i + r);
  }
  scores_tile<R>(rows, kt, hdp, sh.scale, st.s);
  causal_mask<R>(st.s, qpos, j0, nj);
  for (int r = 0; r < R; ++r) {
    float* sr = st.s + r * kTile;
    v16 mx =
        simd::max_of(simd::load(sr), simd::load(sr + 16), simd::load(sr + 32), simd::load(sr + 48));
    const float mnew = std::max(st.m[i + r], simd::hmax(mx));
    const float corr = std::exp(st.m[i + r] - mnew);  // exp(-inf) = 0 on the first tile
    v16 sum = simd::splat(0.0f);
    for (int c = 0; c < 4; ++c) {
      const v16 p = simd::exp(simd::load(sr + 16 * c) - mnew);
      simd::store(sr + 16 * c, p);
      sum += p;
    }
    st.l[i + r] = st.l[i + r] * corr + simd::hsum(sum);
    st.m[i + r] = mnew;
    for (int c = 0; c < NV; ++c) simd::store(outs[r] + 16 * c, simd::load(outs[r] + 16 * c) * corr);
  }
  const int64_t nvis = std::min(nj, qpos[R - 1] - j0 + 1);
  weighted_rows<NV, R>(st.s, vtile, v_ts, nvis, outs);
}

template <int NV>
constexpr int rows_per_block() {
  return NV <= 4 ? 4 : (NV <= 8 ? 2 : 1);
}

template <int NV>
void attention_fwd_impl(const AttnShape& s, const float* q, const float* k, const float* v,
                        float* out, float* lse) {
  constexpr int R = rows_per_block<NV>();
  constexpr int64_t hdp = 16 * NV;
  const int64_t group = s.H / s.KV;
  const int64_t nqb = (s.Tq + kTile - 1) / kTile;
#pragma omp parallel
  {
    std::vector<float> kt(hdp * kTile), sbuf(R * kTile), m(kTile), l(kTile), acc(kTile * hdp);
    FwdState st{sbuf.data(), m.data(), l.data(), acc.data()};
#pragma omp for collapse(3) schedule(dynamic, 1)
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t h = 0; h < s.H; ++h)
        for (int64_t qb = 0; qb < nqb; ++qb) {
          const int64_t i0 = qb * kTile, ni = std::min(kTile, s.Tq - i0);
          const float* qbase = q + b * s.q_bs + h * hdp;
          const float* kbase = k + b * s.k_bs + (h / group) * hdp;
          const float* vbase = v + b * s.k_bs + (h / group) * hdp;
          std::fill(m.begin(), m.end(), kNegInf);
          std::fill(l.begin(), l.end(), 0.0f);
          std::fill(acc.begin(), acc.end(), 0.0f);
          const int64_t kend = s.last_key(i0 + ni - 1) + 1;  // keys visible to the last row
          for (int64_t j0 = 0; j0 < kend; j0 += kTile) {
            const int64_t nj = std::min(kTile, kend - j0);
            transpose_tile(kbase + j0 * s.k_ts, s.k_ts, nj, hdp, kt.data());
            // Rows whose position is before j0 see nothing in this tile.
            int64_t i = std::max<int64_t>(0, s.first_row_seeing(j0) - i0);
            for (; i + R <= ni; i += R)
              fwd_rows<NV, R>(s, hdp, qbase, s.q_ts, kt.data(), vbase + j0 * s.k_ts, s.k_ts, j0, nj,
                              i0, i, st);
            for (; i < ni; ++i)
              fwd_rows<NV, 1>(s, hdp, qbase, s.q_ts, kt.data(), vbase + j0 * s.k_ts, s.k_ts, j0, nj,
                              i0, i, st);
          }
          for (int64_t i = 0; i < ni; ++i) {
            float* o = out + b * s.o_bs + (i0 + i) * s.o_ts + h * hdp;
            const float inv = 1.0f / l[i];
            for (int64_t d = 0; d < hdp; ++d) o[d] = acc[i * hdp + d] * inv;
            if (lse) lse[(b * s.H + h) * s.Tq + i0 + i] = m[i] + std::log(l[i]);
          }
        }
  }
}

// Decoding (a few query rows against a long cache), flash-decoding style: the keys are
// split into ranges, one task per range; a task reads its rows of K and V once, for all
// heads together (rows are contiguous across heads), keeping a partial softmax (max, sum,
// weighted values) per head. The partials are then merged. Skips the tile transposes of
// the prefill kernel, which dominate at one query row. Scratch is O(Tk) per thread.
template <int NV>
void attention_decode_impl(const AttnShape& s, const float* q, const float* k, const float* v,
                           float* out, float* lse) {
  constexpr int64_t hdp = 16 * NV;
  constexpr int64_t kRange = 512;  // keys per task
  const int64_t group = s.H / s.KV, H = s.H;
  const int64_t nsplit = (s.Tk + kRange - 1) / kRange;
  // Partials per (split, head): max, sum and the weighted values.
  std::vector<float> pm(nsplit * H), pl(nsplit * H), po(nsplit * H * hdp);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t i = 0; i < s.Tq; ++i) {
      const int64_t nvis = s.last_key(i) + 1;
      const int64_t used = (nvis + kRange - 1) / kRange;
      const float* qrow = q + b * s.q_bs + i * s.q_ts;
#pragma omp parallel
      {
        std::vector<float> sc(kRange * H);  // (range, H) scores, then probabilities
#pragma omp for schedule(dynamic, 1)
        for (int64_t sp = 0; sp < used; ++sp) {
          const int64_t j0 = sp * kRange, j1 = std::min(nvis, j0 + kRange), n = j1 - j0;
          for (int64_t j = 0; j < n; ++j) {
            const float* krow = k + b * s.k_bs + (j0 + j) * s.k_ts;
            for (int64_t h = 0; h < H; ++h) {
              const float* qh = qrow + h * hdp;
              const float* kj = krow + (h / group) * hdp;
              v16 a = simd::load(qh) * simd::load(kj);
              for (int c = 1; c < NV; ++c) a += simd::load(qh + 16 * c) * simd::load(kj + 16 * c);
              sc[h * kRange + j] = simd::hsum(a) * s.scale;
            }
          }
          for (int64_t h = 0; h < H; ++h) {
            float* sh = sc.data() + h * kRange;
            float mx = kNegInf;
            for (int64_t j = 0; j < n; ++j) mx = std::max(mx, sh[j]);
            float l = 0.0f;
            int64_t j = 0;
            v16 sum = simd::splat(0.0f);
            for (; j + 16 <= n; j += 16) {
              const v16 p = simd::exp(simd::load(sh + j) - mx);
              simd::store(sh + j, p);
              sum += p;
            }
            l = simd::hsum(sum);
            for (; j < n; ++j) l += (sh[j] = std::exp(sh[j] - mx));
            pm[sp * H + h] = mx;
            pl[sp * H + h] = l;
          }
          float* o = po.data() + sp * H * hdp;
          std::fill(o, o + H * hdp, 0.0f);
          for (int64_t j = 0; j < n; ++j) {
            const float* vrow = v + b * s.k_bs + (j0 + j) * s.k_ts;
            for (int64_t h = 0; h < H; ++h) {
              const v16 p = simd::splat(sc[h * kRange + j]);
              const float* vj = vrow + (h / group) * hdp;
              float* oh = o + h * hdp;
              for (int c = 0; c < NV; ++c)
                simd::store(oh + 16 * c, simd::load(oh + 16 * c) + p * simd::load(vj + 16 * c));
            }
          }
        }
      }
      // Merge the partial softmaxes of the ranges.
      for (int64_t h = 0; h < H; ++h) {
        float M = kNegInf;
        for (int64_t sp = 0; sp < used; ++sp) M = std::max(M, pm[sp * H + h]);
        float L = 0.0f;
        v16 acc[NV];
        for (int c = 0; c < NV; ++c) acc[c] = simd::splat(0.0f);
        for (int64_t sp = 0; sp < used; ++sp) {
          const float w = std::exp(pm[sp * H + h] - M);
          L += w * pl[sp * H + h];
          const float* oh = po.data() + (sp * H + h) * hdp;
          for (int c = 0; c < NV; ++c) acc[c] += w * simd::load(oh + 16 * c);
        }
        float* oi = out + b * s.o_bs + i * s.o_ts + h * hdp;
        for (int c = 0; c < NV; ++c) simd::store(oi + 16 * c, acc[c] * (1.0f / L));
        if (lse) lse[(b * H + h) * s.Tq + i] = M + std::log(L);
      }
    }
}

struct BwdTile {
  const float* kt;    // (hd, 64) keys of the tile, transposed
  const float* vt;    // (hd, 64) values, transposed
  const float* krow;  // first key row of the tile (row stride k_ts)
  float* dk;          // (64, hd) tile accumulators
  float* dv;
  float* p;   // (R, 64)
  float* dp;  // (R, 64)
};

template <int NV, int R>
void bwd_rows(const AttnShape& s, const float* qbase, const float* dobase, float* dqbase,
              const float* lrow, const float* delta, int64_t j0, int64_t nj, int64_t i,
              BwdTile& t) {
  constexpr int64_t hdp = 16 * NV;
  const float* qr[R];
  const float* dor[R];
  float* dqr[R];
  int64_t qpos[R];
  for (int r = 0; r < R; ++r) {
    qr[r] = qbase + (i + r) * s.q_ts;
    dor[r] = dobase + (i + r) * s.o_ts;
    dqr[r] = dqbase + (i + r) * s.q_ts;
    qpos[r] = s.last_key(i + r);
  }
  scores_tile<R>(qr, t.kt, hdp, s.scale, t.p);
  causal_mask<R>(t.p, qpos, j0, nj);
  scores_tile<R>(dor, t.vt, hdp, 1.0f, t.dp);  // dp = dout . v
  for (int r = 0; r < R; ++r) {
    const float l = lrow[i + r], dl = delta[i + r];
    for (int c = 0; c < 4; ++c) {
      const v16 p = simd::exp(simd::load(t.p + r * kTile + 16 * c) - l);
      simd::store(t.p + r * kTile + 16 * c, p);
      const v16 ds = p * (simd::load(t.dp + r * kTile + 16 * c) - dl) * s.scale;
      simd::store(t.dp + r * kTile + 16 * c, ds);  // dp now holds dS
    }
  }
  const int64_t nvis = std::min(nj, qpos[R - 1] - j0 + 1);
  weighted_rows<NV, R>(t.dp, t.krow, s.k_ts, nvis, dqr);  // dq += dS . K
  outer_accumulate<NV, R>(t.dp, qr, nvis, t.dk);          // dK += dS^T . Q
  outer_accumulate<NV, R>(t.p, dor, nvis, t.dv);          // dV += P^T . dO
}

template <int NV>
void attention_bwd_impl(const AttnShape& s, const float* q, const float* k, const float* v,
                        const float* out, const float* lse, const float* dout, float* dq, float* dk,
                        float* dv) {
  constexpr int R = rows_per_block<NV>();
  constexpr int64_t hdp = 16 * NV;
  const int64_t group = s.H / s.KV;
  // Tasks own one (batch, kv head), so the dk/dv they accumulate are private to them.
#pragma omp parallel
  {
    std::vector<float> kt(hdp * kTile), vt(hdp * kTile), p(R * kTile), dp(R * kTile),
        dkt(kTile * hdp), dvt(kTile * hdp), delta(s.Tq);
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t kvh = 0; kvh < s.KV; ++kvh) {
        const float* kbase = k + b * s.k_bs + kvh * hdp;
        const float* vbase = v + b * s.k_bs + kvh * hdp;
        float* dkbase = dk + b * s.k_bs + kvh * hdp;
        float* dvbase = dv + b * s.k_bs + kvh * hdp;
        const int64_t kend = s.last_key(s.Tq - 1) + 1;
        for (int64_t j0 = 0; j0 < kend; j0 += kTile) {
          const int64_t nj = std::min(kTile, kend - j0);
          transpose_tile(kbase + j0 * s.k_ts, s.k_ts, nj, hdp, kt.data());
          transpose_tile(vbase + j0 * s.k_ts, s.k_ts, nj, hdp, vt.data());
          std::fill(dkt.begin(), dkt.end(), 0.0f);
          std::fill(dvt.begin(), dvt.end(), 0.0f);
          BwdTile t{kt.data(), vt.data(), kbase + j0 * s.k_ts, dkt.data(), dvt.data(),
                    p.data(),  dp.data()};
          for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
            const float* qbase = q + b * s.q_bs + h * hdp;
            const float* obase = out + b * s.o_bs + h * hdp;
            const float* dobase = dout + b * s.o_bs + h * hdp;
            float* dqbase = dq + b * s.q_bs + h * hdp;
            const float* lrow = lse + (b * s.H + h) * s.Tq;
            // delta_i = dout_i . out_i (the softmax Jacobian's row term); tile-independent,
            // recomputed per tile to keep the scratch O(Tq) rather than O(H * Tq).
            const int64_t ibeg = s.first_row_seeing(j0);
            for (int64_t i = ibeg; i < s.Tq; ++i) {
              v16 acc = simd::splat(0.0f);
              for (int c = 0; c < NV; ++c)
                acc += simd::load(dobase + i * s.o_ts + 16 * c) *
                       simd::load(obase + i * s.o_ts + 16 * c);
              delta[i] = simd::hsum(acc);
            }
            int64_t i = ibeg;
            for (; i + R <= s.Tq; i += R)
              bwd_rows<NV, R>(s, qbase, dobase, dqbase, lrow, delta.data(), j0, nj, i, t);
            for (; i < s.Tq; ++i)
              bwd_rows<NV, 1>(s, qbase, dobase, dqbase, lrow, delta.data(), j0, nj, i, t);
          }
          for (int64_t j = 0; j < nj; ++j)
            for (int64_t d = 0; d < hdp; ++d) {
              dkbase[(j0 + j) * s.k_ts + d] += dkt[j * hdp + d];
              dvbase[(j0 + j) * s.k_ts + d] += dvt[j * hdp + d];
            }
        }
      }
  }
}

// Runs f.template operator()<NV>() for NV = hd / 16 in 1..16.
template <typename F>
void dispatch_nv(int64_t nv, F&& f) {
  switch (nv) {
#define PF_NV_CASE(n) \
  case n:             \
    return f.template operator()<n>();
    PF_NV_CASE(1)
    PF_NV_CASE(2)
    PF_NV_CASE(3) PF_NV_CASE(4) PF_NV_CASE(5) PF_NV_CASE(6) PF_NV_CASE(7) PF_NV_CASE(8)
        PF_NV_CASE(9) PF_NV_CASE(10) PF_NV_CASE(11) PF_NV_CASE(12) PF_NV_CASE(13) PF_NV_CASE(14)
            PF_NV_CASE(15) PF_NV_CASE(16)
#undef PF_NV_CASE
                default : fail("attention: head dim ", nv * 16, " exceeds 256");
  }
}

// Copies a (B, T, heads, hd) strided array into a contiguous (B, T, heads, hdp) one.
std::vector<float> pad_heads(const float* x, int64_t B, int64_t T, int64_t heads, int64_t hd,
                             int64_t hdp, int64_t bs, int64_t ts) {
  std::vector<float> y(B * T * heads * hdp, 0.0f);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < heads; ++h)
        std::copy_n(x + b * bs + t * ts + h * hd, hd, y.data() + ((b * T + t) * heads + h) * hdp);
  return y;
}

void unpad_heads(const std::vector<float>& y, int64_t B, int64_t T, int64_t heads, int64_t hd,
                 int64_t hdp, int64_t bs, int64_t ts, float* x, bool accumulate) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < heads; ++h) {
        const float* src = y.data() + ((b * T + t) * heads + h) * hdp;
        float* dst = x + b * bs + t * ts + h * hd;
        for (int64_t d = 0; d < hd; ++d) dst[d] = accumulate ? dst[d] + src[d] : src[d];
      }
}

// The shape with hd padded to hdp and contiguous strides (scale kept from s).
AttnShape padded_shape(const AttnShape& s, int64_t hdp) {
  AttnShape p = attn_shape(s.B, s.Tq, s.Tk, s.H, s.KV, hdp, s.q_pos0);
  p.scale = s.scale;
  p.see_all = s.see_all;
  return p;
}

void check_shape(const AttnShape& s) {
  PF_CHECK(s.H % s.KV == 0, "attention: ", s.H, " query heads not divisible by ", s.KV,
           " key/value heads");
  PF_CHECK(s.hd > 0 && s.hd <= 256, "attention: head dim ", s.hd, " must be in [1, 256]");
  PF_CHECK(s.B > 0 && s.Tq > 0 && s.Tk > 0, "attention: empty batch, queries or keys");
  PF_CHECK(s.see_all || (s.q_pos0 >= 0 && s.q_pos0 + s.Tq <= s.Tk),
           "attention: queries reach past the last key");
}
}  // namespace

AttnShape attn_shape(int64_t B, int64_t Tq, int64_t Tk, int64_t H, int64_t KV, int64_t hd,
                     int64_t q_pos0) {
  AttnShape s;
  s.B = B, s.Tq = Tq, s.Tk = Tk, s.H = H, s.KV = KV, s.hd = hd, s.q_pos0 = q_pos0;
  s.q_ts = H * hd, s.q_bs = Tq * H * hd;
  s.o_ts = H * hd, s.o_bs = Tq * H * hd;
  s.k_ts = KV * hd, s.k_bs = Tk * KV * hd;
  s.scale = 1.0f / std::sqrt(static_cast<float>(hd));
  return s;
}

AttnShape attn_shape(int64_t B, int64_t Tq, int64_t Tk, int64_t H, int64_t KV, int64_t hd,
                     AttnMask mask, int64_t q_pos0) {
  switch (mask) {
    case AttnMask::Causal:
      return attn_shape(B, Tq, Tk, H, KV, hd, q_pos0);
    case AttnMask::RightAligned:
      return attn_shape(B, Tq, Tk, H, KV, hd, Tk - Tq);
    case AttnMask::None: {
      AttnShape s = attn_shape(B, Tq, Tk, H, KV, hd, 0);
      s.see_all = true;
      return s;
    }
  }
  fail("attention: unknown mask mode");
}

void attention_fwd(const AttnShape& s, const float* q, const float* k, const float* v, float* out,
                   float* lse) {
  check_shape(s);
  if (s.hd % 16 == 0) {
    // A handful of query rows over a long cache is decoding: the direct path is faster.
    const bool decode = s.Tq <= 4 && s.Tk > 64;
    dispatch_nv(s.hd / 16, [&]<int NV>() {
      if (decode)
        attention_decode_impl<NV>(s, q, k, v, out, lse);
      else
        attention_fwd_impl<NV>(s, q, k, v, out, lse);
    });
    return;
  }
  const int64_t hdp = (s.hd + 15) / 16 * 16;
  const AttnShape p = padded_shape(s, hdp);
  auto qp = pad_heads(q, s.B, s.Tq, s.H, s.hd, hdp, s.q_bs, s.q_ts);
  auto kp = pad_heads(k, s.B, s.Tk, s.KV, s.hd, hdp, s.k_bs, s.k_ts);
  auto vp = pad_heads(v, s.B, s.Tk, s.KV, s.hd, hdp, s.k_bs, s.k_ts);
  std::vector<float> op(qp.size());
  dispatch_nv(hdp / 16, [&]<int NV>() {
    attention_fwd_impl<NV>(p, qp.data(), kp.data(), vp.data(), op.data(), lse);
  });
  unpad_heads(op, s.B, s.Tq, s.H, s.hd, hdp, s.o_bs, s.o_ts, out, false);
}

void attention_bwd(const AttnShape& s, const float* q, const float* k, const float* v,
                   const float* out, const float* lse, const float* dout, float* dq, float* dk,
                   float* dv) {
  check_shape(s);
  if (s.hd % 16 == 0) {
    dispatch_nv(s.hd / 16,
                [&]<int NV>() { attention_bwd_impl<NV>(s, q, k, v, out, lse, dout, dq, dk, dv); });
    return;
  }
  const int64_t hdp = (s.hd + 15) / 16 * 16;
  const AttnShape p = padded_shape(s, hdp);
  auto qp = pad_heads(q, s.B, s.Tq, s.H, s.hd, hdp, s.q_bs, s.q_ts);
  auto kp = pad_heads(k, s.B, s.Tk, s.KV, s.hd, hdp, s.k_bs, s.k_ts);
  auto vp = pad_heads(v, s.B, s.Tk, s.KV, s.hd, hdp, s.k_bs, s.k_ts);
  auto op = pad_heads(out, s.B, s.Tq, s.H, s.hd, hdp, s.o_bs, s.o_ts);
  auto dop = pad_heads(dout, s.B, s.Tq, s.H, s.hd, hdp, s.o_bs, s.o_ts);
  std::vector<float> dqp(qp.size(), 0.0f), dkp(kp.size(), 0.0f), dvp(vp.size(), 0.0f);
  dispatch_nv(hdp / 16, [&]<int NV>() {
    attention_bwd_impl<NV>(p, qp.data(), kp.data(), vp.data(), op.data(), lse, dop.data(),
                           dqp.data(), dkp.data(), dvp.data());
  });
  unpad_heads(dqp, s.B, s.Tq, s.H, s.hd, hdp, s.q_bs, s.q_ts, dq, true);
  unpad_heads(dkp, s.B, s.Tk, s.KV, s.hd, hdp, s.k_bs, s.k_ts, dk, true);
  unpad_heads(dvp, s.B, s.Tk, s.KV, s.hd, hdp, s.k_bs, s.k_ts, dv, true);
}

void attention_naive(const AttnShape& s, const float* q, const float* k, const float* v,
                     float* out) {
  const int64_t group = s.H / s.KV;
  std::vector<double> sc(s.Tk);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h)
      for (int64_t i = 0; i < s.Tq; ++i) {
        const float* qi = q + b * s.q_bs + i * s.q_ts + h * s.hd;
        const int64_t nvis = s.last_key(i) + 1;
        double mx = -1e300;
        for (int64_t j = 0; j < nvis; ++j) {
          const float* kj = k + b * s.k_bs + j * s.k_ts + (h / group) * s.hd;
          double acc = 0;
          for (int64_t d = 0; d < s.hd; ++d) acc += static_cast<double>(qi[d]) * kj[d];
          sc[j] = acc * s.scale;
          mx = std::max(mx, sc[j]);
        }
        double z = 0;
        for (int64_t j = 0; j < nvis; ++j) z += (sc[j] = std::exp(sc[j] - mx));
        float* o = out + b * s.o_bs + i * s.o_ts + h * s.hd;
        for (int64_t d = 0; d < s.hd; ++d) {
          double acc = 0;
          for (int64_t j = 0; j < nvis; ++j)
            acc += sc[j] * v[b * s.k_bs + j * s.k_ts + (h / group) * s.hd + d];
          o[d] = static_cast<float>(acc / z);
        }
      }
}

}  // namespace pf::cpu
