#include "kernels/cpu/selective_scan.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "base/error.h"
#include "kernels/cpu/simd.h"

namespace pf::cpu {

// Layout of the work: a task owns one batch row and one block of 16 channels; the state
// of a block is held as 16 vectors h[i] (one per state entry, lanes = channels), so the
// recurrence needs no horizontal sums and y_t comes out as one contiguous vector. d_state
// is processed in groups of 16 (padded with B = C = 0, A = 0, which keeps the padding at
// exactly 0); all outputs are sums over groups, so groups run one after another.
namespace {
using simd::v16;
using simd::v16i;
typedef uint32_t v16u __attribute__((vector_size(64)));
constexpr int64_t kLanes = 16;                   // channels per block
constexpr int kGroup = 16;                       // state entries per group
constexpr int64_t kChunk = kScanCkptSteps;       // backward: steps recomputed per checkpoint
constexpr int64_t kCkptBlock = kGroup * kLanes;  // floats of one saved block state
// Rows of one channel block are D floats apart, each on its own page for large D, which
// defeats the hardware prefetchers; loads are requested this many steps ahead instead.
constexpr int64_t kAhead = 6;
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2 = 0.693147180559945309f;

// 2^(x * y) for x * y <= 0, exactly 0 below about -125 and exactly 1 at 0; relative error
// ~2.2e-7. Decay exponents delta * A are never positive, so exp's upper clamp and
// ln -> log2 scaling go; taking the product's factors lets x * y + magic and x * y - r
// contract to FMAs. 2^f on [-1/2, 1/2] is a degree-5 minimax polynomial (7.5e-8 before
// rounding the coefficients to float; fitted by Remez exchange, constant term set to 1);
// 2^round(x y) is added straight into its exponent bits.
PF_SIMD_INLINE v16 exp2_product(v16 x, v16 y) {
  const v16 magic = simd::splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const v16 t = x * y + magic;
  const v16 f = x * y - (t - magic);  // in [-1/2, 1/2]
  v16 p = simd::splat(1.32764720e-3f);
  p = p * f + 9.67554096e-3f;
  p = p * f + 5.55071309e-2f;
  p = p * f + 2.40221202e-1f;
  p = p * f + 6.93146944e-1f;
  p = p * f + 1.0f;
  // The low bits of t hold round(x y) in two's complement, and magic's bits vanish when
  // shifted by 23, so t << 23 is round(x y) moved into the exponent field.
  // (Vector casts reinterpret the bits; unsigned: the masked-off lanes may wrap.)
  const v16u bits = reinterpret_cast<v16u>(p) + (reinterpret_cast<v16u>(t) << 23);
  const v16 r = reinterpret_cast<v16>(bits);  // p in [0.7, 1.42] stays normal for round(x y) >= -125
  return t >= 12582912.0f - 125.0f ? r : simd::splat(0.0f);
}

// softplus(z) = max(z, 0) + log1p(e), e = exp(-|z|); *sig = sigmoid(z) = softplus'(z).
// log1p(e) = 2 atanh(s) with s = e / (2 + e) <= 1/3: a short odd series, accurate for tiny e.
PF_SIMD_INLINE v16 softplus(v16 z, v16* sig) {
  const v16 az = z < 0.0f ? -z : z;
  const v16 e = exp2_product(az, simd::splat(-kLog2e));
  const v16 s = e / (e + 2.0f);
  const v16 s2 = s * s;
  v16 p = simd::splat(1.0f / 13);
  p = p * s2 + 1.0f / 11;
  p = p * s2 + 1.0f / 9;
  p = p * s2 + 1.0f / 7;
  p = p * s2 + 1.0f / 5;
  p = p * s2 + 1.0f / 3;
  p = p * s2 + 1.0f;
  if (sig) {
    const v16 inv = 1.0f / (e + 1.0f);
    *sig = z >= 0.0f ? inv : e * inv;
  }
  return simd::vmax(z, simd::splat(0.0f)) + 2.0f * s * p;
}

using simd::load_n;
using simd::store_n;
inline void add_n(float* p, v16 v, int64_t n) { store_n(p, load_n(p, n) + v, n); }

// result[i] = sum of the lanes of p[i], i < 16: a butterfly of pairwise shuffles, so the 16
// horizontal sums cost 15 adds rather than 16 * 15.
PF_SIMD_INLINE v16 lane_sums(const v16* p) {
  v16 q[8], r[4], s[2];
  for (int i = 0; i < 8; ++i)
    q[i] = __builtin_shufflevector(p[2 * i], p[2 * i + 1], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19,
                                   20, 21, 22, 23) +
           __builtin_shufflevector(p[2 * i], p[2 * i + 1], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26,
                                   27, 28, 29, 30, 31);
  for (int i = 0; i < 4; ++i)
    r[i] = __builtin_shufflevector(q[2 * i], q[2 * i + 1], 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19,
                                   24, 25, 26, 27) +
           __builtin_shufflevector(q[2 * i], q[2 * i + 1], 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22,
                                   23, 28, 29, 30, 31);
  for (int i = 0; i < 2; ++i)
    s[i] = __builtin_shufflevector(r[2 * i], r[2 * i + 1], 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21,
                                   24, 25, 28, 29) +
           __builtin_shufflevector(r[2 * i], r[2 * i + 1], 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22,
                                   23, 26, 27, 30, 31);
  return __builtin_shufflevector(s[0], s[1], 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28,
                                 30) +
         __builtin_shufflevector(s[0], s[1], 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29,
                                 31);
}

// A * log2(e) = -exp(A_log) * log2(e) for 16 state entries of one channel; 0 past ng.
PF_SIMD_INLINE v16 a2_row(const float* a_log_row, int64_t ng) {
  const v16 a2 = -simd::exp(load_n(a_log_row, ng)) * kLog2e;
  const v16i lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  return lane < static_cast<int32_t>(ng) ? a2 : simd::splat(0.0f);
}

// One call's inputs and derived sizes.
struct Args {
  ScanShape s;
  const float *u, *dt, *dt_bias, *A_log, *Bm, *Cm, *Dskip;
  int64_t nblk, ngrp, nchunks;  // channel blocks, state groups (both of 16), checkpoints
  // The task's checkpoints in a (B, nblk, ngrp, nchunks, 16, 16) buffer.
  int64_t ckpt_offset(int64_t b, int64_t blk, int64_t grp) const {
    return ((b * nblk + blk) * ngrp + grp) * nchunks * kCkptBlock;
  }
};

// Constants of one (channel block, state group); lanes are channels.
struct BlockParams {
  int64_t c0, nc, n0, ng;  // first channel, valid channels; first state entry, valid entries
  v16 a2[kGroup];          // A * log2(e); 0 in padding, so padded entries never decay
  v16 bias, dskip;         // (16) channels of dt_bias and Dskip
};

BlockParams block_params(const Args& a, int64_t blk, int64_t grp) {
  BlockParams p;
  p.c0 = blk * kLanes, p.nc = std::min(kLanes, a.s.D - p.c0);
  p.n0 = grp * kGroup, p.ng = std::min<int64_t>(kGroup, a.s.N - p.n0);
  alignas(64) float at[kGroup][kLanes] = {};  // (16 entries, 16 channels)
  for (int64_t j = 0; j < p.nc; ++j) {
    const v16 row = a2_row(a.A_log + (p.c0 + j) * a.s.N + p.n0, p.ng);
    for (int i = 0; i < kGroup; ++i) at[i][j] = row[i];
  }
  for (int i = 0; i < kGroup; ++i) p.a2[i] = simd::load(at[i]);
  p.bias = a.dt_bias ? load_n(a.dt_bias + p.c0, p.nc) : simd::splat(0.0f);
  p.dskip = a.Dskip ? load_n(a.Dskip + p.c0, p.nc) : simd::splat(0.0f);
  return p;
}

// The group's slice of a (B, L, N) row of Bm or Cm, zero-padded to 16 through tmp if short.
inline const float* group_row(const float* row, const BlockParams& p, float* tmp) {
  if (p.ng == kGroup) return row + p.n0;
  std::fill(tmp, tmp + kGroup, 0.0f);
  std::copy_n(row + p.n0, p.ng, tmp);
  return tmp;
}

// h (16 entries, lanes = channels) <-> the block's slice of a (B, D, N) state; null = zeros.
void load_state(const Args& a, const BlockParams& p, int64_t b, const float* src, v16* h) {
  alignas(64) float t[kGroup][kLanes] = {};
  if (src)
    for (int64_t j = 0; j < p.nc; ++j)
      for (int64_t i = 0; i < p.ng; ++i) t[i][j] = src[(b * a.s.D + p.c0 + j) * a.s.N + p.n0 + i];
  for (int i = 0; i < kGroup; ++i) h[i] = simd::load(t[i]);
}
void store_state(const Args& a, const BlockParams& p, int64_t b, const v16* h, float* dst) {
  for (int64_t j = 0; j < p.nc; ++j)
    for (int64_t i = 0; i < p.ng; ++i) dst[(b * a.s.D + p.c0 + j) * a.s.N + p.n0 + i] = h[i][j];
}

inline void save_ckpt(float* ckpt, int64_t chunk, const v16* h) {
  for (int i = 0; i < kGroup; ++i) simd::store(ckpt + chunk * kCkptBlock + i * kLanes, h[i]);
}

// Forward of one (batch, block, group) over all L steps; ckpt: (nchunks, 16, 16) or null.
// With kWithY, the first group writes y = Dskip * u + <h, C> and later groups add their
// <h, C>; without, only the states are advanced (checkpoints for the backward).
template <bool kWithY>
void fwd_block(const Args& a, const BlockParams& p, int64_t b, const float* h0, float* y,
               float* h_last, float* ckpt) {
  const ScanShape& s = a.s;
  const bool first = p.n0 == 0;
  v16 h[kGroup];
  load_state(a, p, b, h0, h);
  alignas(64) float btmp[kGroup], ctmp[kGroup];
  for (int64_t t = 0; t < s.L; ++t) {
    if (ckpt && t % kChunk == 0) save_ckpt(ckpt, t / kChunk, h);
    const int64_t off = (b * s.L + t) * s.D + p.c0;  // into (B, L, D)
    if (t + kAhead < s.L) {
      __builtin_prefetch(a.u + off + kAhead * s.D);
      __builtin_prefetch(a.dt + off + kAhead * s.D);
      if (kWithY) __builtin_prefetch(y + off + kAhead * s.D, 1);
    }
    const v16 delta = softplus(load_n(a.dt + off, p.nc) + p.bias, nullptr);
    const v16 uv = load_n(a.u + off, p.nc);
    const v16 du = delta * uv;
    const float* bt = group_row(a.Bm + (b * s.L + t) * s.N, p, btmp);
    if (!kWithY) {
#pragma GCC unroll 16
      for (int i = 0; i < kGroup; ++i) h[i] = exp2_product(delta, p.a2[i]) * h[i] + du * bt[i];
      continue;
    }
    const float* ct = group_row(a.Cm + (b * s.L + t) * s.N, p, ctmp);
    v16 y0 = first ? p.dskip * uv : load_n(y + off, p.nc), y1 = simd::splat(0.0f);
#pragma GCC unroll 16
    for (int i = 0; i < kGroup; i += 2) {  // two accumulators halve the y dependency chain
      h[i] = exp2_product(delta, p.a2[i]) * h[i] + du * bt[i];
      h[i + 1] = exp2_product(delta, p.a2[i + 1]) * h[i + 1] + du * bt[i + 1];
      y0 += h[i] * ct[i];
      y1 += h[i + 1] * ct[i + 1];
    }
    store_n(y + off, y0 + y1, p.nc);
  }
  if (h_last) store_state(a, p, b, h, h_last);
}

// Per-thread scratch of the backward.
struct BwdScratch {
  std::vector<float> ckpt;  // (nchunks, 16, 16) state before each chunk, if not given
  std::vector<v16> hs;      // (kChunk, 16) h_t for the steps of the chunk
  std::vector<v16> qs;      // (kChunk, 16) exp(delta_t * A) * h_{t-1}
  std::vector<v16> decay;   // (kChunk, 16) exp(delta_t * A)
  std::vector<v16> delta;   // (kChunk)
  std::vector<v16> sig;     // (kChunk) sigmoid(dt + dt_bias)
};

// Gradient destinations of one thread: direct (du, ddt: each element has one writer) and
// partial sums private to the thread (reduced in thread order after the loop).
struct BwdDst {
  float *du, *ddt;    // (B, L, D) or null
  float *dB, *dC;     // (B, L, Np) partials, Np = 16 * groups, or null
  float* dA;          // (D, N) partial of dA_log
  float *dbias, *dD;  // (D) partials
  int64_t Np;
};

// Backward of one (batch, block, group): walks the chunks from the last, recomputing each
// chunk's states and decays from its checkpoint (nchunks, 16, 16) into scratch, then
// stepping back through it.
void bwd_block(const Args& a, const BlockParams& p, int64_t b, const float* dy, const float* ckpt,
               BwdScratch& sc, const BwdDst& o) {
  const ScanShape& s = a.s;
  const bool first = p.n0 == 0;
  alignas(64) float btmp[kGroup], ctmp[kGroup];
  v16 h[kGroup];
  v16 g[kGroup], dacc[kGroup];  // dL/dh_t carried backwards; sum_t x * delta for dA
  for (int i = 0; i < kGroup; ++i) g[i] = dacc[i] = simd::splat(0.0f);
  v16 dbias_acc = simd::splat(0.0f), dD_acc = simd::splat(0.0f);
  for (int64_t t0 = (s.L - 1) / kChunk * kChunk; t0 >= 0; t0 -= kChunk) {
    const int64_t t1 = std::min(s.L, t0 + kChunk);
    for (int i = 0; i < kGroup; ++i)
      h[i] = simd::load(ckpt + t0 / kChunk * kCkptBlock + i * kLanes);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t tl = t - t0, off = (b * s.L + t) * s.D + p.c0;
      const v16 delta = softplus(load_n(a.dt + off, p.nc) + p.bias, &sc.sig[tl]);
      sc.delta[tl] = delta;
      const v16 du = delta * load_n(a.u + off, p.nc);
      const float* bt = group_row(a.Bm + (b * s.L + t) * s.N, p, btmp);
      v16 *hn = &sc.hs[tl * kGroup], *q = &sc.qs[tl * kGroup], *dk = &sc.decay[tl * kGroup];
#pragma GCC unroll 16
      for (int i = 0; i < kGroup; ++i) {
        dk[i] = exp2_product(delta, p.a2[i]);
        q[i] = dk[i] * h[i];
        hn[i] = h[i] = q[i] + du * bt[i];
      }
    }
    for (int64_t t = t1 - 1; t >= t0; --t) {
      const int64_t tl = t - t0, off = (b * s.L + t) * s.D + p.c0;
      if (t >= kAhead) {
        const int64_t ahead = off - kAhead * s.D;
        __builtin_prefetch(dy + ahead);
        __builtin_prefetch(a.u + ahead);
        if (o.du) __builtin_prefetch(o.du + ahead, 1);
        if (o.ddt) __builtin_prefetch(o.ddt + ahead, 1);
      }
      const v16 dyv = load_n(dy + off, p.nc), uv = load_n(a.u + off, p.nc);
      const v16 delta = sc.delta[tl], du = delta * uv;
      const float* bt = group_row(a.Bm + (b * s.L + t) * s.N, p, btmp);
      const float* ct = group_row(a.Cm + (b * s.L + t) * s.N, p, ctmp);
      const v16* hn = &sc.hs[tl * kGroup];
      const v16* q = &sc.qs[tl * kGroup];
      const v16* dk = &sc.decay[tl * kGroup];
      v16 pc[kGroup], pb[kGroup];  // per-lane terms of dC_t, dB_t
      v16 gb = simd::splat(0.0f), xa = simd::splat(0.0f);
#pragma GCC unroll 16
      for (int i = 0; i < kGroup; ++i) {
        const v16 gi = g[i] + dyv * ct[i];  // dL/dh_t
        pc[i] = dyv * hn[i];
        pb[i] = gi * du;
        gb += gi * bt[i];
        const v16 x = gi * q[i];  // g * d(h_t)/d(delta A)
        xa += x * p.a2[i];
        dacc[i] += x * delta;
        g[i] = gi * dk[i];  // becomes dL/dh_{t-1} (without the C term)
      }
      // d h_t / d delta = A exp(delta A) h_{t-1} + u B; A = a2 * ln 2.
      const v16 ddelta = xa * kLn2 + uv * gb;
      const v16 ddt = ddelta * sc.sig[tl];
      if (o.du) add_n(o.du + off, first ? delta * gb + dyv * p.dskip : delta * gb, p.nc);
      if (o.ddt) add_n(o.ddt + off, ddt, p.nc);
      dbias_acc += ddt;
      if (first) dD_acc += dyv * uv;
      const int64_t prow = (b * s.L + t) * o.Np + p.n0;  // into the (B, L, Np) partials
      if (o.dC) simd::store(o.dC + prow, simd::load(o.dC + prow) + lane_sums(pc));
      if (o.dB) simd::store(o.dB + prow, simd::load(o.dB + prow) + lane_sums(pb));
    }
  }
  for (int64_t j = 0; j < p.nc; ++j) {
    o.dbias[p.c0 + j] += dbias_acc[j];
    if (first) o.dD[p.c0 + j] += dD_acc[j];
    for (int64_t i = 0; i < p.ng; ++i)  // dA_log = dA * A, A = a2 * ln 2
      o.dA[(p.c0 + j) * s.N + p.n0 + i] += dacc[i][j] * p.a2[i][j] * kLn2;
  }
}

Args make_args(const ScanShape& s, const float* u, const float* dt, const float* dt_bias,
               const float* A_log, const float* Bm, const float* Cm, const float* Dskip) {
  PF_CHECK(s.B >= 1 && s.L >= 1 && s.D >= 1 && s.N >= 1, "selective_scan: bad shape B=", s.B,
           " L=", s.L, " D=", s.D, " N=", s.N);
  return Args{s,
              u,
              dt,
              dt_bias,
              A_log,
              Bm,
              Cm,
              Dskip,
              (s.D + kLanes - 1) / kLanes,
              (s.N + kGroup - 1) / kGroup,
              (s.L + kChunk - 1) / kChunk};
}

// out[r, n] += sum over threads (in order) of part[thr][r, n] for n < N; partial rows
// have Np columns and thread blocks are `stride` floats apart.
void reduce_partials(const float* part, int nthr, int64_t stride, int64_t rows, int64_t Np,
                     int64_t N, float* out) {
#pragma omp parallel for schedule(static) if (rows * N >= 65536)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t n = 0; n < N; ++n) {
      float acc = 0.0f;
      for (int thr = 0; thr < nthr; ++thr) acc += part[thr * stride + r * Np + n];
      out[r * N + n] += acc;
    }
}
}  // namespace

void selective_scan_fwd(const ScanShape& s, const float* u, const float* dt, const float* dt_bias,
                        const float* A_log, const float* Bm, const float* Cm, const float* Dskip,
                        const float* h0, float* y, float* h_last, float* ckpt) {
  const Args a = make_args(s, u, dt, dt_bias, A_log, Bm, Cm, Dskip);
  const int64_t tasks = s.B * a.nblk;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t b = task / a.nblk, blk = task % a.nblk;
    for (int64_t grp = 0; grp < a.ngrp; ++grp)
      fwd_block<true>(a, block_params(a, blk, grp), b, h0, y, h_last,
                      ckpt ? ckpt + a.ckpt_offset(b, blk, grp) : nullptr);
  }
}

int64_t selective_scan_ckpt_floats(const ScanShape& s) {
  return s.B * (s.D + kLanes - 1) / kLanes * ((s.N + kGroup - 1) / kGroup) *
         ((s.L + kChunk - 1) / kChunk) * kCkptBlock;
}

void selective_scan_bwd(const ScanShape& s, const float* u, const float* dt, const float* dt_bias,
                        const float* A_log, const float* Bm, const float* Cm, const float* Dskip,
                        const float* dy, float* du, float* ddt, float* ddt_bias, float* dA_log,
                        float* dBm, float* dCm, float* dDskip, const float* ckpt) {
  const Args a = make_args(s, u, dt, dt_bias, A_log, Bm, Cm, Dskip);
  const int nthr = omp_get_max_threads();
  const int64_t Np = a.ngrp * kGroup;
  // Per-thread partials: [dB (B, L, Np)] [dC (B, L, Np)] dA (D, N), dbias (D), dD (D).
  const int64_t bl = dBm ? s.B * s.L * Np : 0, cl = dCm ? s.B * s.L * Np : 0;
  const int64_t stride = bl + cl + s.D * s.N + 2 * s.D;
  std::vector<float> part(nthr * stride, 0.0f);
  const int64_t tasks = s.B * a.nblk;
#pragma omp parallel num_threads(nthr)
  {
    float* mine = part.data() + omp_get_thread_num() * stride;
    BwdDst o{du,      ddt, dBm ? mine : nullptr, dCm ? mine + bl : nullptr, mine + bl + cl, nullptr,
             nullptr, Np};
    o.dbias = o.dA + s.D * s.N;
    o.dD = o.dbias + s.D;
    BwdScratch sc;
    if (!ckpt) sc.ckpt.resize(a.nchunks * kCkptBlock);
    sc.hs.resize(kChunk * kGroup);
    sc.qs.resize(kChunk * kGroup);
    sc.decay.resize(kChunk * kGroup);
    sc.delta.resize(kChunk);
    sc.sig.resize(kChunk);
    // Static: the task -> thread map, hence every partial sum, is fixed for a thread count.
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t b = task / a.nblk, blk = task % a.nblk;
      for (int64_t grp = 0; grp < a.ngrp; ++grp) {
        const BlockParams p = block_params(a, blk, grp);
        const float* ck = ckpt ? ckpt + a.ckpt_offset(b, blk, grp) : sc.ckpt.data();
        if (!ckpt) fwd_block<false>(a, p, b, nullptr, nullptr, nullptr, sc.ckpt.data());
        bwd_block(a, p, b, dy, ck, sc, o);
      }
    }
  }
  const float* p = part.data();
  if (dBm) reduce_partials(p, nthr, stride, s.B * s.L, Np, s.N, dBm);
  if (dCm) reduce_partials(p + bl, nthr, stride, s.B * s.L, Np, s.N, dCm);
  if (dA_log) reduce_partials(p + bl + cl, nthr, stride, s.D, s.N, s.N, dA_log);
  if (ddt_bias) reduce_partials(p + bl + cl + s.D * s.N, nthr, stride, s.D, 1, 1, ddt_bias);
  if (dDskip) reduce_partials(p + bl + cl + s.D * s.N + s.D, nthr, stride, s.D, 1, 1, dDskip);
}

namespace {

// A * log2(e) per (channel, entry) for a decode step: (D, ceil(N/16)*16). Its D*N exps
// cost more than a one-row step itself, and A_log changes only when weights do, so each
// thread keeps the table per A_log array with a copy of the values it came from; a
// memcmp (far cheaper than the exps) finds weights changed in place.
const float* a2_table(const float* A_log, int64_t D, int64_t N) {
  struct Entry {
    std::vector<float> a_log, table;
  };
  thread_local std::unordered_map<const float*, Entry> cache;
  const int64_t npad = (N + kGroup - 1) / kGroup * kGroup;
  const size_t n = static_cast<size_t>(D * N);
  auto it = cache.find(A_log);
  if (it != cache.end() && it->second.a_log.size() == n &&
      it->second.table.size() == static_cast<size_t>(D * npad) &&
      std::memcmp(it->second.a_log.data(), A_log, n * sizeof(float)) == 0)
    return it->second.table.data();
  if (cache.size() >= 256) cache.clear();  // models come and go: bound what is kept
  Entry& e = cache[A_log];
  e.a_log.assign(A_log, A_log + n);
  e.table.resize(static_cast<size_t>(D * npad));
  for (int64_t c = 0; c < D; ++c)
    for (int64_t n0 = 0; n0 < N; n0 += kGroup)
      simd::store(e.table.data() + c * npad + n0,
                  a2_row(A_log + c * N + n0, std::min<int64_t>(kGroup, N - n0)));
  return e.table.data();
}

}  // namespace

void selective_scan_step(int64_t B, int64_t D, int64_t N, const float* u, const float* dt,
                         const float* dt_bias, const float* A_log, const float* Bt, const float* Ct,
                         const float* Dskip, float* h, float* y, const int64_t* slots) {
  const int64_t nblk = (D + kLanes - 1) / kLanes;
  const int64_t npad = (N + kGroup - 1) / kGroup * kGroup;
  const float* a2t = a2_table(A_log, D, N);  // (D, npad)
  // Same arithmetic as fwd_block lane for lane, with the state in its (D, N) layout.
#pragma omp parallel for collapse(2) schedule(static) if (B * D * N >= 65536)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t blk = 0; blk < nblk; ++blk) {
      const int64_t c0 = blk * kLanes, nc = std::min(kLanes, D - c0);
      const v16 bias = dt_bias ? load_n(dt_bias + c0, nc) : simd::splat(0.0f);
      const v16 dskip = Dskip ? load_n(Dskip + c0, nc) : simd::splat(0.0f);
      const v16 delta = softplus(load_n(dt + b * D + c0, nc) + bias, nullptr);
      const v16 uv = load_n(u + b * D + c0, nc);
      const v16 du = delta * uv;
      // Per channel of the block, its (N) state in one vector and its dot with C summed
      // at once: 16 live accumulators would spill on AVX2 (16 registers of 8 floats).
      alignas(64) float delta_of[kLanes], du_of[kLanes], y_of[kLanes] = {};
      simd::store(delta_of, delta);
      simd::store(du_of, du);
      const float* bt = Bt + b * N;  // (N)
      const float* ct = Ct + b * N;  // (N)
      if (N == kGroup) {  // the usual d_state: one vector per channel, B and C loaded once
        const v16 btv = simd::load(bt), ctv = simd::load(ct);
        float* hb = h + ((slots ? slots[b] : b) * D + c0) * N;  // (nc, 16)
        for (int64_t j = 0; j < nc; ++j) {
          const v16 hv = exp2_product(simd::splat(delta_of[j]), simd::load(a2t + (c0 + j) * kGroup)) *
                             simd::load(hb + j * kGroup) +
                         du_of[j] * btv;
          simd::store(hb + j * kGroup, hv);
          y_of[j] = simd::hsum(hv * ctv);
        }
        store_n(y + b * D + c0, dskip * uv + simd::load(y_of), nc);
        continue;
      }
      for (int64_t j = 0; j < nc; ++j) {
        float* hrow = h + ((slots ? slots[b] : b) * D + c0 + j) * N;  // (N)
        const v16 dj = simd::splat(delta_of[j]), duj = simd::splat(du_of[j]);
        v16 acc = simd::splat(0.0f);
        for (int64_t n0 = 0; n0 < N; n0 += kGroup) {
          const int64_t ng = std::min<int64_t>(kGroup, N - n0);
          const v16 a2 = simd::load(a2t + (c0 + j) * npad + n0);
          v16 hv = load_n(hrow + n0, ng);
          hv = exp2_product(dj, a2) * hv + duj * load_n(bt + n0, ng);
          store_n(hrow + n0, hv, ng);
          acc += hv * load_n(ct + n0, ng);
        }
        y_of[j] = simd::hsum(acc);
      }
      store_n(y + b * D + c0, dskip * uv + simd::load(y_of), nc);
    }
}

void selective_scan_ref(const ScanShape& s, const float* u, const float* dt, const float* dt_bias,
                        const float* A_log, const float* Bm, const float* Cm, const float* Dskip,
                        const float* h0, float* y, float* h_last) {
  std::vector<double> h(s.N);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t c = 0; c < s.D; ++c) {
      for (int64_t n = 0; n < s.N; ++n) h[n] = h0 ? h0[(b * s.D + c) * s.N + n] : 0.0;
      for (int64_t t = 0; t < s.L; ++t) {
        const int64_t i = (b * s.L + t) * s.D + c;
        const double z = double(dt[i]) + (dt_bias ? dt_bias[c] : 0.0);
        const double delta = z > 20.0 ? z : std::log1p(std::exp(z));  // softplus
        double acc = (Dskip ? Dskip[c] : 0.0) * u[i];
        for (int64_t n = 0; n < s.N; ++n) {
          const double A = -std::exp(double(A_log[c * s.N + n]));
          const int64_t r = (b * s.L + t) * s.N + n;
          h[n] = std::exp(delta * A) * h[n] + delta * u[i] * Bm[r];
          acc += h[n] * Cm[r];
        }
        y[i] = static_cast<float>(acc);
      }
      if (h_last)
        for (int64_t n = 0; n < s.N; ++n)
          h_last[(b * s.D + c) * s.N + n] = static_cast<float>(h[n]);
    }
}

}  // namespace pf::cpu
