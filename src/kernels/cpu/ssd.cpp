#include "kernels/cpu/ssd.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "base/error.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/simd.h"
#include "kernels/cpu/tri_gemm.h"

// Within chunk c (local steps i, j; cum_i = sum of delta*A over steps <= i of the chunk):
//   y_i   = sum_{j<=i} exp(cum_i - cum_j) delta_j (C_i . B_j) x_j + exp(cum_i) S_in C_i + D x_i
//   S_out = exp(cum_end) S_in + sum_j exp(cum_end - cum_j) delta_j x_j B_j^T
// The forward runs each (sequence, group, head block) through its chunks in order, with the
// heads' states kept in cache. The backward needs every chunk's S_in and the gradient of
// every S_out: both come from per-chunk (P, N) summaries (parallel) and a short sequential
// carry; then all chunks' input gradients are computed in parallel.
// A = -exp(A_log) < 0, so every exponent above is <= 0 and nothing overflows.
namespace pf::cpu {

namespace {
using simd::v16;
using simd::v16i;

const v16i kLane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }
float softplus(float u) { return u > 20.0f ? u : std::log1p(std::exp(u)); }
float dot(const float* a, const float* b, int64_t n) {
  float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
  for (int64_t k = 0; k < n; ++k) acc += a[k] * b[k];
  return acc;
}

// Sizes shared by the passes.
struct Plan {
  int64_t Q;    // chunk length (the last chunk may be shorter)
  int64_t nc;   // number of chunks
  int64_t hpg;  // heads per group
  int64_t xt;   // time stride of x, y, dy: H * P
  int64_t bt;   // time stride of Bm, Cm: G * N
  int64_t PN;   // elements of one state
  int64_t H;    // heads
  int64_t t0(int64_t c) const { return c * Q; }
  // Offset of state (b, c, h) in a (B, nc, H, P, N) array.
  int64_t st(int64_t b, int64_t c, int64_t h) const { return ((b * nc + c) * H + h) * PN; }
};

Plan make_plan(const SsdShape& s, int64_t chunk) {
  PF_CHECK(s.B > 0 && s.L > 0 && s.H > 0 && s.P > 0 && s.G > 0 && s.N > 0,
           "ssd: every dimension must be positive");
  PF_CHECK(s.H % s.G == 0, "ssd: ", s.H, " heads not divisible by ", s.G, " groups");
  PF_CHECK(chunk >= 1, "ssd: chunk must be >= 1, got ", chunk);
  Plan p;
  p.Q = std::min(chunk, s.L);
  p.nc = (s.L + p.Q - 1) / p.Q;
  p.hpg = s.H / s.G;
  p.xt = s.H * s.P;
  p.bt = s.G * s.N;
  p.PN = s.P * s.N;
  p.H = s.H;
  return p;
}

// delta, cum: (B, H, L). delta = softplus(dt + dt_bias); cum = inclusive running sum of
// delta * A restarted at every chunk, so exp(cum_i - cum_j) is the decay from j to i.
void decay_prepare(const SsdShape& s, const Plan& p, const float* dt, const float* dt_bias,
                   const float* A_log, float* delta, float* cum) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h) {
      const float A = -std::exp(A_log[h]), bias = dt_bias ? dt_bias[h] : 0.0f;
      float* d = delta + (b * s.H + h) * s.L;
      float* c = cum + (b * s.H + h) * s.L;
      double acc = 0.0;  // double so a long chunk's sum does not drift
      for (int64_t t = 0; t < s.L; ++t) {
        if (t % p.Q == 0) acc = 0.0;
        d[t] = softplus(dt[(b * s.L + t) * s.H + h] + bias);
        acc += static_cast<double>(d[t]) * A;
        c[t] = static_cast<float>(acc);
      }
    }
}

// For chunks c in [c0, c1): out[b, c, h] (P, N) = sum_j w_j v_j u_j^T over the chunk, with
// v rows from a (B, L, H, P) array (x or dy) and u rows from a (B, L, G, N) one (Bm or Cm).
// to_end: w_j = exp(cum_end - cum_j) delta_j, the state a chunk leaves when started from 0;
// else:   w_j = exp(cum_j), the gradient a chunk's outputs send to its incoming state.
void chunk_outer_sums(const SsdShape& s, const Plan& p, int64_t c0, int64_t c1, bool to_end,
                      const float* v, const float* u, const float* delta, const float* cum,
                      float* out) {
  if (c1 <= c0) return;
#pragma omp parallel
  {
    std::vector<float> vw(p.Q * s.P);  // (Q, P) weighted v rows
#pragma omp for collapse(3) schedule(static)
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t h = 0; h < s.H; ++h) {
          const int64_t t0 = p.t0(c), nq = std::min(p.Q, s.L - t0);
          const float* d = delta + (b * s.H + h) * s.L + t0;
          const float* cs = cum + (b * s.H + h) * s.L + t0;
          const float* vc = v + (b * s.L + t0) * p.xt + h * s.P;
          for (int64_t j = 0; j < nq; ++j) {
            const float w = to_end ? std::exp(cs[nq - 1] - cs[j]) * d[j] : std::exp(cs[j]);
            for (int64_t q = 0; q < s.P; ++q) vw[j * s.P + q] = w * vc[j * p.xt + q];
          }
          const float* uc = u + (b * s.L + t0) * p.bt + (h / p.hpg) * s.N;
          gemm(true, false, s.P, s.N, nq, 1.0f, vw.data(), s.P, uc, p.bt, 0.0f, out + p.st(b, c, h),
               s.N);
        }
  }
}

// Carries per-chunk (P, N) summaries along the sequence, in place in buf (B, nc, H, P, N):
// visiting chunk c (in order, or in reverse), its entry receives the running sum and the
// running sum becomes exp(cum_end[c]) * running + the entry's old value. Forward, with local
// states of chunks 0 .. nc-2, entries become incoming states S_in[c] from a zero start.
// Reverse, with each chunk c >= 1's gradient to its S_in, entries become dS_out[c], the
// gradient of the state leaving chunk c. The last chunk visited only receives.
void carry(const SsdShape& s, const Plan& p, const float* cum, bool reverse, float* buf) {
#pragma omp parallel
  {
    std::vector<float> run(p.PN);  // (P, N)
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t h = 0; h < s.H; ++h) {
        std::fill(run.begin(), run.end(), 0.0f);
        for (int64_t k = 0; k < p.nc; ++k) {
          const int64_t c = reverse ? p.nc - 1 - k : k;
          float* e = buf + p.st(b, c, h);
          if (k + 1 == p.nc) {
            std::copy(run.begin(), run.end(), e);
            break;
          }
          const int64_t tend = std::min(s.L, p.t0(c + 1)) - 1;
          const float dec = std::exp(cum[(b * s.H + h) * s.L + tend]);
#pragma omp simd
          for (int64_t i = 0; i < p.PN; ++i) {
            const float loc = e[i];
            e[i] = run[i];
            run[i] = dec * run[i] + loc;
          }
        }
      }
  }
}

// Per-thread scratch for one chunk. Square matrices are (Q, ld) with ld = Q rounded up to
// 16 so that whole vectors can be stored past the diagonal; vectors carry 16 floats of slack.
struct ChunkScratch {
  std::vector<float> cb;          // (Q, ld) C_i . B_j
  std::vector<float> m;           // (Q, ld) masked decay-weighted CB
  std::vector<float> g;           // (Q, ld) dy_i . x_j (backward)
  std::vector<float> wsum;        // (Q, ld) sum over the group's heads of decay-weighted g
  std::vector<float> cl, dl;      // (Q + 16) cum and delta of the current head, zero-padded
  std::vector<float> ds, dd;      // (Q + 16) gradients of cum and of delta
  std::vector<float> colr, colt;  // (Q + 16) column sums
  std::vector<float> tmp;         // (Q, N)
  std::vector<float> xv, u;       // (Q, P) weighted x rows; u (backward)
  ChunkScratch(int64_t Q, int64_t P, int64_t N, bool backward)
      : cb(Q * round16(Q)), m(Q * round16(Q)), cl(Q + 16), dl(Q + 16), xv(Q * P) {
    if (!backward) return;
    g.resize(Q * round16(Q));
    wsum.resize(Q * round16(Q));
    for (auto* v : {&ds, &dd, &colr, &colt}) v->resize(Q + 16);
    tmp.resize(Q * N);
    u.resize(Q * P);
  }
  // Copies the chunk's cum and delta of one head into the padded vectors.
  void load_head(const float* cum, const float* delta, int64_t nq) {
    std::fill(cl.begin(), cl.end(), 0.0f);
    std::fill(dl.begin(), dl.end(), 0.0f);
    std::copy_n(cum, nq, cl.data());
    std::copy_n(delta, nq, dl.data());
  }
};

// m (nq, ld) = CB_ij exp(cum_i - cum_j) delta_j for j <= i, zero above the diagonal.
void forward_matrix(int64_t nq, int64_t ld, ChunkScratch& sc) {
  const float *cl = sc.cl.data(), *dl = sc.dl.data();
  for (int64_t i = 0; i < nq; ++i) {
    const float* cbr = sc.cb.data() + i * ld;
    float* mr = sc.m.data() + i * ld;
    const v16 ci = simd::splat(cl[i]);
    for (int64_t j0 = 0; j0 <= i; j0 += 16) {
      const v16 v =
          simd::exp(ci - simd::load(cl + j0)) * simd::load(dl + j0) * simd::load(cbr + j0);
      simd::store(mr + j0, kLane + static_cast<int32_t>(j0) <= static_cast<int32_t>(i)
                               ? v
                               : simd::splat(0.0f));
    }
    for (int64_t j = round16(i + 1); j < tri_end(i, nq); ++j) mr[j] = 0.0f;
  }
}

// Outputs of sequence b for heads [h0, h1) of group g, chunk after chunk. S: (h1 - h0, P, N)
// enters with those heads' initial states (ignored when zero_start) and leaves with their
// final states when want_last.
void sequence_outputs(const SsdShape& s, const Plan& p, int64_t b, int64_t g, int64_t h0,
                      int64_t h1, bool zero_start, bool want_last, const float* x, const float* Bm,
                      const float* Cm, const float* Dskip, const float* delta, const float* cum,
                      float* S, float* y, ChunkScratch& sc) {
  for (int64_t c = 0; c < p.nc; ++c) {
    const int64_t t0 = p.t0(c), nq = std::min(p.Q, s.L - t0), ld = round16(nq);
    const float* Cg = Cm + (b * s.L + t0) * p.bt + g * s.N;  // (nq, N), row stride bt
    const float* Bg = Bm + (b * s.L + t0) * p.bt + g * s.N;
    const bool no_state = zero_start && c == 0, update = c + 1 < p.nc || want_last;
    tri_abt(nq, s.N, Cg, p.bt, Bg, p.bt, sc.cb.data(), ld);
    for (int64_t h = h0; h < h1; ++h) {
      float* Sh = S + (h - h0) * p.PN;  // (P, N)
      sc.load_head(cum + (b * s.H + h) * s.L + t0, delta + (b * s.H + h) * s.L + t0, nq);
      forward_matrix(nq, ld, sc);
      const float* X = x + (b * s.L + t0) * p.xt + h * s.P;  // (nq, P), row stride xt
      float* Y = y + (b * s.L + t0) * p.xt + h * s.P;
      const float Dh = Dskip ? Dskip[h] : 0.0f;
      // Y = exp(cum_i) C_i S^T + D x_i: the incoming state's part, then the skip.
      if (no_state) {
        for (int64_t i = 0; i < nq; ++i) std::fill_n(Y + i * p.xt, s.P, 0.0f);
      } else {
        gemm(false, true, nq, s.P, s.N, 1.0f, Cg, p.bt, Sh, s.N, 0.0f, Y, p.xt);
      }
      for (int64_t i = 0; i < nq; ++i) {
        const float e = std::exp(sc.cl[i]);
        float* yi = Y + i * p.xt;
        const float* xi = X + i * p.xt;
#pragma omp simd
        for (int64_t q = 0; q < s.P; ++q) yi[q] = e * yi[q] + Dh * xi[q];
      }
      tri_mm(nq, s.P, sc.m.data(), ld, X, p.xt, 1.0f, Y, p.xt);  // the chunk's own inputs
      if (!update) continue;
      // S = exp(cum_end) S + sum_j exp(cum_end - cum_j) delta_j x_j B_j^T.
      const float cend = sc.cl[nq - 1];
      for (int64_t j = 0; j < nq; ++j) {
        const float w = std::exp(cend - sc.cl[j]) * sc.dl[j];
        for (int64_t q = 0; q < s.P; ++q) sc.xv[j * s.P + q] = w * X[j * p.xt + q];
      }
      gemm(true, false, s.P, s.N, nq, 1.0f, sc.xv.data(), s.P, Bg, p.bt,
           no_state ? 0.0f : std::exp(cend), Sh, s.N);
    }
  }
}

}  // namespace

void ssd_fwd(const SsdShape& s, int64_t chunk, const float* x, const float* dt,
             const float* dt_bias, const float* A_log, const float* Bm, const float* Cm,
             const float* Dskip, const float* h0, float* y, float* h_last) {
  const Plan p = make_plan(s, chunk);
  std::vector<float> delta(s.B * s.H * s.L), cum(s.B * s.H * s.L);  // (B, H, L)
  decay_prepare(s, p, dt, dt_bias, A_log, delta.data(), cum.data());
  // Tasks are (batch, group, head block), each running its chunks in order with its states
  // in cache. A group's heads share C.B^T, so they are split only as far as needed to give
  // every thread work.
  const int64_t base = s.B * s.G;
  const int64_t nhb = std::clamp<int64_t>((omp_get_max_threads() + base - 1) / base, 1, p.hpg);
#pragma omp parallel
  {
    ChunkScratch sc(p.Q, s.P, s.N, false);
    std::vector<float> S(((p.hpg + nhb - 1) / nhb) * p.PN);  // (heads, P, N)
#pragma omp for collapse(3) schedule(dynamic, 1)
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t g = 0; g < s.G; ++g)
        for (int64_t hb = 0; hb < nhb; ++hb) {
          const int64_t hs = g * p.hpg + hb * p.hpg / nhb;
          const int64_t he = g * p.hpg + (hb + 1) * p.hpg / nhb;
          if (h0) std::copy_n(h0 + (b * s.H + hs) * p.PN, (he - hs) * p.PN, S.data());
          sequence_outputs(s, p, b, g, hs, he, !h0, h_last != nullptr, x, Bm, Cm, Dskip,
                           delta.data(), cum.data(), S.data(), y, sc);
          if (h_last) std::copy_n(S.data(), (he - hs) * p.PN, h_last + (b * s.H + hs) * p.PN);
        }
  }
}

namespace {

// Read-only inputs and outputs of the backward, shared by all tasks.
struct BwdArgs {
  const float *x, *A_log, *Bm, *Cm, *Dskip, *dy;
  const float *delta, *cum;  // (B, H, L)
  const float *st, *dst;     // (B, nc, H, P, N): S_in and dS_out per chunk
  float *dx, *ddt, *dBm, *dCm;
  float* part;  // (B * nc, 3, H) per-task sums for dDskip, dA_log, ddt_bias
};

// Within-chunk part for one head: from g = dy_i . x_j and CB, accumulates the gradient of
// delta (dd), of cum (ds), the matrix for dx (m) and the group's wsum for dB, dC.
void within_chunk_grads(int64_t nq, int64_t ld, bool want_m, bool want_wsum, ChunkScratch& sc) {
  const float *cl = sc.cl.data(), *dl = sc.dl.data();
  float *colr = sc.colr.data(), *colt = sc.colt.data();
  std::fill(sc.colr.begin(), sc.colr.end(), 0.0f);
  std::fill(sc.colt.begin(), sc.colt.end(), 0.0f);
  for (int64_t i = 0; i < nq; ++i) {
    const float *cbr = sc.cb.data() + i * ld, *gr = sc.g.data() + i * ld;
    float *mr = sc.m.data() + i * ld, *wr = sc.wsum.data() + i * ld;
    const v16 ci = simd::splat(cl[i]), zero = simd::splat(0.0f);
    v16 rowt = zero;
    for (int64_t j0 = 0; j0 <= i; j0 += 16) {
      const v16i keep = kLane + static_cast<int32_t>(j0) <= static_cast<int32_t>(i);
      const v16 e = simd::exp(ci - simd::load(cl + j0));  // decay j -> i
      const v16 ed = e * simd::load(dl + j0);
      const v16 cb = simd::load(cbr + j0), gv = simd::load(gr + j0);
      const v16 r = keep ? e * cb * gv : zero;  // into dL/d delta_j (column sums)
      const v16 t = r * simd::load(dl + j0);    // into dL/d cum_i (+, rows), d cum_j (-, columns)
      rowt += t;
      simd::store(colr + j0, simd::load(colr + j0) + r);
      simd::store(colt + j0, simd::load(colt + j0) + t);
      if (want_m) simd::store(mr + j0, keep ? ed * cb : zero);
      if (want_wsum) simd::store(wr + j0, simd::load(wr + j0) + (keep ? ed * gv : zero));
    }
    sc.ds[i] += simd::hsum(rowt);
    if (want_m)
      for (int64_t j = round16(i + 1); j < tri_end(i, nq); ++j) mr[j] = 0.0f;
  }
  for (int64_t j = 0; j < nq; ++j) {
    sc.dd[j] += colr[j];
    sc.ds[j] -= colt[j];
  }
}

// All gradients of chunk c, group g (every head of the group: they share dB, dC rows).
void chunk_grads(const SsdShape& s, const Plan& p, int64_t b, int64_t c, int64_t g,
                 const BwdArgs& a, ChunkScratch& sc) {
  const int64_t t0 = p.t0(c), nq = std::min(p.Q, s.L - t0), ld = round16(nq);
  const int64_t bo = (b * s.L + t0) * p.bt + g * s.N;  // first B/C row of the chunk
  const float *Cg = a.Cm + bo, *Bg = a.Bm + bo;        // (nq, N), row stride bt
  float* dCg = a.dCm ? a.dCm + bo : nullptr;
  float* dBg = a.dBm ? a.dBm + bo : nullptr;
  const bool has_in = c > 0, has_out = c + 1 < p.nc;  // nonzero S_in, dS_out
  tri_abt(nq, s.N, Cg, p.bt, Bg, p.bt, sc.cb.data(), ld);
  if (dBg || dCg) std::fill_n(sc.wsum.begin(), nq * ld, 0.0f);
  float* part = a.part + (b * p.nc + c) * 3 * s.H;
  for (int64_t h = g * p.hpg; h < (g + 1) * p.hpg; ++h) {
    const int64_t xo = (b * s.L + t0) * p.xt + h * s.P;  // (nq, P), row stride xt
    const float *X = a.x + xo, *DY = a.dy + xo;
    float* DX = a.dx ? a.dx + xo : nullptr;
    const float* S_in = a.st + p.st(b, c, h);     // (P, N)
    const float* dS_out = a.dst + p.st(b, c, h);  // (P, N)
    const float* dl_h = a.delta + (b * s.H + h) * s.L + t0;
    sc.load_head(a.cum + (b * s.H + h) * s.L + t0, dl_h, nq);
    std::fill(sc.ds.begin(), sc.ds.end(), 0.0f);
    std::fill(sc.dd.begin(), sc.dd.end(), 0.0f);
    float *ds = sc.ds.data(), *dd = sc.dd.data();
    const float* cl = sc.cl.data();

    // Within the chunk: y_i += sum_{j<=i} exp(cum_i - cum_j) delta_j (C_i . B_j) x_j.
    tri_abt(nq, s.P, DY, p.xt, X, p.xt, sc.g.data(), ld);
    within_chunk_grads(nq, ld, DX != nullptr, dBg || dCg, sc);
    if (DX) tri_tmm(nq, s.P, sc.m.data(), ld, DY, p.xt, DX, p.xt);

    // Skip: y_i += D x_i.
    const float Dh = a.Dskip ? a.Dskip[h] : 0.0f;
    float dD = 0.0f;
    for (int64_t i = 0; i < nq; ++i) {
      dD += dot(DY + i * p.xt, X + i * p.xt, s.P);
      if (DX)
        for (int64_t q = 0; q < s.P; ++q) DX[i * p.xt + q] += Dh * DY[i * p.xt + q];
    }
    part[h] += dD;

    // Incoming state: y_i += exp(cum_i) S_in C_i. tmp_i = S_in^T dy_i (N).
    if (has_in) {
      float* tmp = sc.tmp.data();
      gemm(false, false, nq, s.N, s.P, 1.0f, DY, p.xt, S_in, s.N, 0.0f, tmp, s.N);
      for (int64_t i = 0; i < nq; ++i) {
        const float e = std::exp(cl[i]);
        const float* ti = tmp + i * s.N;
        ds[i] += e * dot(ti, Cg + i * p.bt, s.N);
        if (dCg)
          for (int64_t n = 0; n < s.N; ++n) dCg[i * p.bt + n] += e * ti[n];
      }
    }

    // Outgoing state: S_out = exp(cum_end) S_in + sum_j exp(cum_end - cum_j) delta_j x_j B_j^T.
    // u_j = dS_out B_j (P).
    if (has_out) {
      float *u = sc.u.data(), *xv = sc.xv.data();
      gemm(false, true, nq, s.P, s.N, 1.0f, Bg, p.bt, dS_out, s.N, 0.0f, u, s.P);
      const float cend = cl[nq - 1];
      for (int64_t j = 0; j < nq; ++j) {
        const float w = std::exp(cend - cl[j]), v = w * dl_h[j];
        const float* xj = X + j * p.xt;
        const float* uj = u + j * s.P;
        const float xu = dot(xj, uj, s.P);
        dd[j] += w * xu;
        ds[nq - 1] += v * xu;
        ds[j] -= v * xu;
        if (DX)
          for (int64_t q = 0; q < s.P; ++q) DX[j * p.xt + q] += v * uj[q];
        for (int64_t q = 0; q < s.P; ++q) xv[j * s.P + q] = v * xj[q];
      }
      if (has_in) ds[nq - 1] += std::exp(cend) * dot(dS_out, S_in, p.PN);
      if (dBg) gemm(false, false, nq, s.N, s.P, 1.0f, xv, s.P, dS_out, s.N, 1.0f, dBg, p.bt);
    }

    // cum is a running sum of a_k = delta_k A: da_k = sum_{i>=k} ds_i. Then through
    // delta = softplus(u): d u = d delta * sigmoid(u), and sigmoid(u) = 1 - exp(-delta).
    const float A = -std::exp(a.A_log[h]);
    float acc = 0.0f, dA = 0.0f, dbias = 0.0f;
    for (int64_t k = nq - 1; k >= 0; --k) {
      acc += ds[k];
      dA += dl_h[k] * acc;
      const float du = (dd[k] + A * acc) * -std::expm1(-dl_h[k]);
      if (a.ddt) a.ddt[(b * s.L + t0 + k) * s.H + h] += du;
      dbias += du;
    }
    part[s.H + h] += dA * A;  // dA / dA_log = A
    part[2 * s.H + h] += dbias;
  }
  // The group's share through C_i . B_j, summed over its heads in wsum.
  if (dCg) tri_mm(nq, s.N, sc.wsum.data(), ld, Bg, p.bt, 1.0f, dCg, p.bt);
  if (dBg) tri_tmm(nq, s.N, sc.wsum.data(), ld, Cg, p.bt, dBg, p.bt);
}

}  // namespace

void ssd_bwd(const SsdShape& s, int64_t chunk, const float* x, const float* dt,
             const float* dt_bias, const float* A_log, const float* Bm, const float* Cm,
             const float* Dskip, const float* dy, float* dx, float* ddt, float* ddt_bias,
             float* dA_log, float* dBm, float* dCm, float* dDskip) {
  const Plan p = make_plan(s, chunk);
  std::vector<float> delta(s.B * s.H * s.L), cum(s.B * s.H * s.L);  // (B, H, L)
  decay_prepare(s, p, dt, dt_bias, A_log, delta.data(), cum.data());
  // Two (B, nc, H, P, N) arrays: S_in and dS_out of every chunk (the forward states are
  // recomputed: one product per chunk). They run to tens of MB, and fresh pages each call
  // cost more than the arithmetic on them, so the calling thread keeps the buffer.
  thread_local std::vector<float> keep;
  const size_t ns = s.B * p.nc * s.H * p.PN;
  if (keep.size() < 2 * ns) keep.resize(2 * ns);
  float *st = keep.data(), *dst = keep.data() + ns;
  chunk_outer_sums(s, p, 0, p.nc - 1, true, x, Bm, delta.data(), cum.data(), st);
  carry(s, p, cum.data(), false, st);
  chunk_outer_sums(s, p, 1, p.nc, false, dy, Cm, delta.data(), cum.data(), dst);
  carry(s, p, cum.data(), true, dst);
  std::vector<float> part(s.B * p.nc * 3 * s.H, 0.0f);  // (B * nc, 3, H)
  const BwdArgs a{x,  A_log, Bm, Cm,  Dskip, dy,  delta.data(), cum.data(),
                  st, dst,   dx, ddt, dBm,   dCm, part.data()};
#pragma omp parallel
  {
    ChunkScratch sc(p.Q, s.P, s.N, true);
#pragma omp for collapse(3) schedule(dynamic, 1)
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t c = 0; c < p.nc; ++c)
        for (int64_t g = 0; g < s.G; ++g) chunk_grads(s, p, b, c, g, a, sc);
  }
  // Fixed-order reduction of the per-task sums keeps the result deterministic.
  for (int64_t t = 0; t < s.B * p.nc; ++t)
    for (int64_t h = 0; h < s.H; ++h) {
      const float* pt = part.data() + t * 3 * s.H;
      if (dDskip) dDskip[h] += pt[h];
      if (dA_log) dA_log[h] += pt[s.H + h];
      if (ddt_bias) ddt_bias[h] += pt[2 * s.H + h];
    }
}

void ssd_step(const SsdShape& s, const float* x, const float* dt, const float* dt_bias,
              const float* A_log, const float* Bt, const float* Ct, const float* Dskip,
              float* state, float* y, const int64_t* slots) {
  PF_CHECK(s.H % s.G == 0, "ssd_step: ", s.H, " heads not divisible by ", s.G, " groups");
  const int64_t hpg = s.H / s.G, PN = s.P * s.N;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h) {
      const float d = softplus(dt[b * s.H + h] + (dt_bias ? dt_bias[h] : 0.0f));
      const float dec = std::exp(-d * std::exp(A_log[h])), Dh = Dskip ? Dskip[h] : 0.0f;
      const float* xh = x + (b * s.H + h) * s.P;
      const float* Bh = Bt + (b * s.G + h / hpg) * s.N;
      const float* Ch = Ct + (b * s.G + h / hpg) * s.N;
      float* S = state + ((slots ? slots[b] : b) * s.H + h) * PN;  // (P, N)
      float* yh = y + (b * s.H + h) * s.P;
      for (int64_t q = 0; q < s.P; ++q) {
        float* Sq = S + q * s.N;
        const float dx = d * xh[q];
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int64_t n = 0; n < s.N; ++n) {
          Sq[n] = dec * Sq[n] + dx * Bh[n];
          acc += Sq[n] * Ch[n];
        }
        yh[q] = acc + Dh * xh[q];
      }
    }
}

void ssd_ref(const SsdShape& s, const float* x, const float* dt, const float* dt_bias,
             const float* A_log, const float* Bm, const float* Cm, const float* Dskip,
             const float* h0, float* y, float* h_last) {
  PF_CHECK(s.H % s.G == 0, "ssd_ref: ", s.H, " heads not divisible by ", s.G, " groups");
  const int64_t hpg = s.H / s.G, PN = s.P * s.N;
  std::vector<double> S(PN);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h) {
      for (int64_t k = 0; k < PN; ++k) S[k] = h0 ? h0[(b * s.H + h) * PN + k] : 0.0;
      const double A = -std::exp(static_cast<double>(A_log[h]));
      for (int64_t t = 0; t < s.L; ++t) {
        const double u =
            static_cast<double>(dt[(b * s.L + t) * s.H + h]) + (dt_bias ? dt_bias[h] : 0.0);
        const double d = u > 20.0 ? u : std::log1p(std::exp(u)), dec = std::exp(d * A);
        const float* xt = x + ((b * s.L + t) * s.H + h) * s.P;
        const float* Bt = Bm + ((b * s.L + t) * s.G + h / hpg) * s.N;
        const float* Ct = Cm + ((b * s.L + t) * s.G + h / hpg) * s.N;
        for (int64_t q = 0; q < s.P; ++q) {
          double acc = 0.0;
          for (int64_t n = 0; n < s.N; ++n) {
            double& v = S[q * s.N + n];
            v = dec * v + d * xt[q] * Bt[n];
            acc += v * Ct[n];
          }
          y[((b * s.L + t) * s.H + h) * s.P + q] =
              static_cast<float>(acc + (Dskip ? Dskip[h] : 0.0) * xt[q]);
        }
      }
      if (h_last)
        for (int64_t k = 0; k < PN; ++k) h_last[(b * s.H + h) * PN + k] = static_cast<float>(S[k]);
    }
}

}  // namespace pf::cpu
