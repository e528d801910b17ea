#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "base/error.h"

namespace pf::cpu {

namespace {
constexpr int64_t kBq = 64;  // query rows per tile
constexpr int64_t kBk = 64;  // keys per tile
constexpr int64_t kMaxHd = 256;

// Transposes a (n, hd) block with row stride ts into kt (hd, kBk).
inline void transpose_block(const float* k, int64_t ts, int64_t n, int64_t hd, float* kt) {
  for (int64_t j = 0; j < n; ++j)
    for (int64_t d = 0; d < hd; ++d) kt[d * kBk + j] = k[j * ts + d];
}

// s[j] = scale * dot(q, k_j) for j < n, with k given transposed (hd, kBk).
inline void row_scores(const float* q, const float* kt, int64_t n, int64_t hd, float scale,
                       float* s) {
  for (int64_t j = 0; j < kBk; ++j) s[j] = 0.0f;
  for (int64_t d = 0; d < hd; ++d) {
    const float qd = q[d] * scale;
    const float* kd = kt + d * kBk;
#pragma omp simd
    for (int64_t j = 0; j < kBk; ++j) s[j] += qd * kd[j];
  }
  for (int64_t j = n; j < kBk; ++j) s[j] = -std::numeric_limits<float>::infinity();
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

void attention_fwd(const AttnShape& s, const float* q, const float* k, const float* v, float* out,
                   float* lse) {
  PF_CHECK(s.H % s.KV == 0, "attention: ", s.H, " query heads not divisible by ", s.KV,
           " key/value heads");
  PF_CHECK(s.hd <= kMaxHd, "attention: head dim ", s.hd, " exceeds ", kMaxHd);
  PF_CHECK(s.q_pos0 + s.Tq <= s.Tk, "attention: queries reach past the last key");
  const int64_t group = s.H / s.KV;
  const int64_t nqb = (s.Tq + kBq - 1) / kBq;
  const int64_t hd = s.hd;
#pragma omp parallel
  {
    std::vector<float> kt(kMaxHd * kBk), sc(kBq * kBk), m(kBq), l(kBq), acc(kBq * kMaxHd);
#pragma omp for collapse(3) schedule(dynamic, 1)
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t h = 0; h < s.H; ++h)
        for (int64_t qb = 0; qb < nqb; ++qb) {
          const int64_t kvh = h / group;
          const int64_t i0 = qb * kBq, ni = std::min(kBq, s.Tq - i0);
          const float* qbase = q + b * s.q_bs + h * hd;
          const float* kbase = k + b * s.k_bs + kvh * hd;
          const float* vbase = v + b * s.k_bs + kvh * hd;
          std::fill(m.begin(), m.end(), -std::numeric_limits<float>::infinity());
          std::fill(l.begin(), l.end(), 0.0f);
          std::fill(acc.begin(), acc.begin() + ni * hd, 0.0f);
          const int64_t kend = s.q_pos0 + i0 + ni;  // keys [0, kend) are visible to some row
          for (int64_t j0 = 0; j0 < kend; j0 += kBk) {
            const int64_t nj = std::min(kBk, kend - j0);
            transpose_block(kbase + j0 * s.k_ts, s.k_ts, nj, hd, kt.data());
            for (int64_t i = 0; i < ni; ++i) {
              const int64_t qpos = s.q_pos0 + i0 + i;
              if (j0 > qpos) break;
              const int64_t nvis = std::min(nj, qpos - j0 + 1);
              float* srow = sc.data() + i * kBk;
              row_scores(qbase + (i0 + i) * s.q_ts, kt.data(), nvis, hd, s.scale, srow);
              float mx = m[i];
              for (int64_t j = 0; j < nvis; ++j) mx = std::max(mx, srow[j]);
              const float corr = std::exp(m[i] - mx);
              float psum = 0.0f;
              for (int64_t j = 0; j < nvis; ++j) {
                srow[j] = std::exp(srow[j] - mx);
                psum += srow[j];
              }
              l[i] = l[i] * corr + psum;
              m[i] = mx;
              float* a = acc.data() + i * hd;
#pragma omp simd
              for (int64_t d = 0; d < hd; ++d) a[d] *= corr;
              for (int64_t j = 0; j < nvis; ++j) {
                const float p = srow[j];
                const float* vj = vbase + (j0 + j) * s.k_ts;
#pragma omp simd
                for (int64_t d = 0; d < hd; ++d) a[d] += p * vj[d];
              }
            }
          }
          for (int64_t i = 0; i < ni; ++i) {
            float* o = out + b * s.o_bs + (i0 + i) * s.o_ts + h * hd;
            const float inv = 1.0f / l[i];
            for (int64_t d = 0; d < hd; ++d) o[d] = acc[i * hd + d] * inv;
            if (lse) lse[(b * s.H + h) * s.Tq + i0 + i] = m[i] + std::log(l[i]);
          }
        }
  }
}

void attention_bwd(const AttnShape& s, const float* q, const float* k, const float* v,
                   const float* out, const float* lse, const float* dout, float* dq, float* dk,
                   float* dv) {
  const int64_t group = s.H / s.KV;
  const int64_t hd = s.hd;
  // Tasks own one (batch, kv head) so the dk/dv they accumulate are private to them.
#pragma omp parallel
  {
    std::vector<float> kt(kMaxHd * kBk), vt(kMaxHd * kBk), p(kBk), dp(kBk), delta(s.Tq);
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t kvh = 0; kvh < s.KV; ++kvh) {
        const float* kbase = k + b * s.k_bs + kvh * hd;
        const float* vbase = v + b * s.k_bs + kvh * hd;
        float* dkbase = dk + b * s.k_bs + kvh * hd;
        float* dvbase = dv + b * s.k_bs + kvh * hd;
        for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
          const float* qbase = q + b * s.q_bs + h * hd;
          float* dqbase = dq + b * s.q_bs + h * hd;
          const float* obase = out + b * s.o_bs + h * hd;
          const float* dobase = dout + b * s.o_bs + h * hd;
          const float* lrow = lse + (b * s.H + h) * s.Tq;
          for (int64_t i = 0; i < s.Tq; ++i) {
            float acc = 0.0f;
            for (int64_t d = 0; d < hd; ++d)
              acc += dobase[i * s.o_ts + d] * obase[i * s.o_ts + d];
            delta[i] = acc;
          }
          const int64_t kend = s.q_pos0 + s.Tq;
          for (int64_t j0 = 0; j0 < kend; j0 += kBk) {
            const int64_t nj = std::min(kBk, kend - j0);
            transpose_block(kbase + j0 * s.k_ts, s.k_ts, nj, hd, kt.data());
            transpose_block(vbase + j0 * s.k_ts, s.k_ts, nj, hd, vt.data());
            // First query that sees key j0.
            const int64_t ibeg = std::max<int64_t>(0, j0 - s.q_pos0);
            for (int64_t i = ibeg; i < s.Tq; ++i) {
              const int64_t qpos = s.q_pos0 + i;
              const int64_t nvis = std::min(nj, qpos - j0 + 1);
              const float* qi = qbase + i * s.q_ts;
              const float* doi = dobase + i * s.o_ts;
              row_scores(qi, kt.data(), nvis, hd, s.scale, p.data());
              const float li = lrow[i];
              for (int64_t j = 0; j < nvis; ++j) p[j] = std::exp(p[j] - li);
              // dp[j] = dout_i . v_j
              for (int64_t j = 0; j < kBk; ++j) dp[j] = 0.0f;
              for (int64_t d = 0; d < hd; ++d) {
                const float g = doi[d];
                const float* vd = vt.data() + d * kBk;
#pragma omp simd
                for (int64_t j = 0; j < kBk; ++j) dp[j] += g * vd[j];
              }
              float* dqi = dqbase + i * s.q_ts;
              for (int64_t j = 0; j < nvis; ++j) {
                const float pj = p[j];
                const float ds = pj * (dp[j] - delta[i]) * s.scale;
                const float* kj = kbase + (j0 + j) * s.k_ts;
                float* dkj = dkbase + (j0 + j) * s.k_ts;
                float* dvj = dvbase + (j0 + j) * s.k_ts;
#pragma omp simd
                for (int64_t d = 0; d < hd; ++d) {
                  dqi[d] += ds * kj[d];
                  dkj[d] += ds * qi[d];
                  dvj[d] += pj * doi[d];
                }
              }
            }
          }
        }
      }
  }
}

void attention_naive(const AttnShape& s, const float* q, const float* k, const float* v,
                     float* out) {
  const int64_t group = s.H / s.KV;
  std::vector<double> sc(s.Tk);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h)
      for (int64_t i = 0; i < s.Tq; ++i) {
        const float* qi = q + b * s.q_bs + i * s.q_ts + h * s.hd;
        const int64_t nvis = s.q_pos0 + i + 1;
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
