#include "kernels/cpu/retention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "base/error.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/tri_gemm.h"

// Chunkwise form, chunk c of length nq starting at t0, local rows i, j, g = gamma:
//   R_i    = sum_{j <= i} g^(i-j) (q_i . k_j) v_j + g^(i+1) q_i S_c        (S_c enters chunk c)
//   S_c+1  = g^nq S_c + sum_j g^(nq-1-j) k_j^T v_j
// Every power is of a non-negative distance inside one chunk (<= Q), so nothing overflows;
// powers of long distances underflow to 0, which is their value in f32 anyway.
// Backward with dR_i = c_i dout_i and the reverse state U_c = sum over later chunks of
// g^(n - t0_{c+1}) q_n^T dR_n (dk, dv):
//   dq_i += sum_{j<=i} g^(i-j) (dR_i . v_j) k_j + g^(i+1) dR_i S_c^T
//   dk_j += sum_{i>=j} g^(i-j) (dR_i . v_j) q_i + g^(nq-j) v_j U_c^T
//   dv_j += sum_{i>=j} g^(i-j) (q_i . k_j) dR_i + g^(nq-j) k_j U_c
//   U_c-1 = g^nq U_c + sum_i g^i q_i^T dR_i
namespace pf::cpu {

namespace {

// Parallel form: queries and keys in tiles of this many.
constexpr int64_t kTile = 128;

int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }

void check_args(const RetShape& s, RetForm form, int64_t chunk, const float* gamma,
                const char* fn) {
  PF_CHECK(s.B > 0 && s.T > 0 && s.H > 0 && s.dk > 0 && s.dv > 0, fn,
           ": every dimension must be positive, got B=", s.B, " T=", s.T, " H=", s.H, " dk=", s.dk,
           " dv=", s.dv);
  PF_CHECK(form == RetForm::Parallel || chunk >= 1, fn, ": chunk must be >= 1, got ", chunk);
  for (int64_t h = 0; h < s.H; ++h)
    PF_CHECK(gamma[h] > 0.0f && gamma[h] < 1.0f, fn, ": gamma[", h, "] = ", gamma[h],
             " is not in (0, 1)");
}

// rowsum at position pos: 1 + g + ... + g^pos = (1 - g^(pos+1)) / (1 - g), in double so that
// g near 1 keeps full precision.
double rowsum(double g, int64_t pos) {
  return -std::expm1(static_cast<double>(pos + 1) * std::log(g)) / (1.0 - g);
}

// a[i, j] *= tab[base - i + j] for i < rows, j < cols(i). With tab a reversed power table
// (zero past its end) this multiplies by g^(distance) and zeroes entries above the diagonal.
template <typename Cols>
void decay_mask(int64_t rows, Cols cols, const float* tab, int64_t base, float* a, int64_t lda) {
  for (int64_t i = 0; i < rows; ++i) {
    const float* t = tab + base - i;
    float* ai = a + i * lda;
    const int64_t n = cols(i);
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) ai[j] *= t[j];
  }
}

// dst (n, F) row i = w[i * step] * src row i. step = -1 walks the weights backwards.
void scale_rows(int64_t n, int64_t F, const float* w, int64_t step, const float* src, int64_t lds,
                float* dst, int64_t ldd) {
  for (int64_t i = 0; i < n; ++i) {
    const float wi = w[i * step];
    const float* si = src + i * lds;
    float* di = dst + i * ldd;
#pragma omp simd
    for (int64_t f = 0; f < F; ++f) di[f] = wi * si[f];
  }
}

// ---- chunkwise form ----------------------------------------------------------------------

// Sizes and per-head tables of the chunkwise form (g = gamma_h):
//   pw   (H, Q + 1):   g^d
//   rev  (H, 2Q + 16): g^(Q-1-x) for x < Q, else 0; row i of a chunk's mask is rev + Q-1-i
//   rowc (H, T):       c at position pos0 + t, 1 / sqrt(rowsum), shared by the batch
struct ChunkPlan {
  int64_t Q, nc, ld;  // chunk length, chunks, row stride of (Q, Q) scratch
  int64_t qs, vs;     // time strides of q/k (H dk) and of v/out (H dv)
  int64_t npw, nrev;
  std::vector<float> pw, rev, rowc;
  const float* pw_of(int64_t h) const { return pw.data() + h * npw; }
  const float* rev_of(int64_t h) const { return rev.data() + h * nrev; }
};

ChunkPlan make_chunk_plan(const RetShape& s, int64_t chunk, const float* gamma, int64_t pos0) {
  ChunkPlan p;
  p.Q = std::min(chunk, s.T);
  p.nc = (s.T + p.Q - 1) / p.Q;
  p.ld = round16(p.Q);
  p.qs = s.H * s.dk;
  p.vs = s.H * s.dv;
  p.npw = p.Q + 1;
  p.nrev = 2 * p.Q + 16;
  p.pw.resize(s.H * p.npw);
  p.rev.assign(s.H * p.nrev, 0.0f);
  p.rowc.resize(s.H * s.T);
  for (int64_t h = 0; h < s.H; ++h) {
    const double g = gamma[h], lg = std::log(g);
    for (int64_t d = 0; d <= p.Q; ++d) p.pw[h * p.npw + d] = static_cast<float>(std::exp(d * lg));
    for (int64_t x = 0; x < p.Q; ++x)
      p.rev[h * p.nrev + x] = static_cast<float>(std::exp((p.Q - 1 - x) * lg));
    for (int64_t t = 0; t < s.T; ++t)
      p.rowc[h * s.T + t] = static_cast<float>(1.0 / std::sqrt(rowsum(g, pos0 + t)));
  }
  return p;
}

// Per-thread scratch of the chunkwise form.
struct ChunkScratch {
  std::vector<float> a;   // (Q, ld) decay-masked q_i . k_j
  std::vector<float> m;   // (Q, ld) decay-masked dR_i . v_j (backward)
  std::vector<float> xs;  // (Q, max(dk, dv)) row-scaled copies of inputs
  std::vector<float> dr;  // (Q, dv) dR rows (backward)
  std::vector<float> S;   // (dk, dv) running state (forward) or reverse state U (backward)
  ChunkScratch(const ChunkPlan& p, const RetShape& s, bool backward)
      : a(p.Q * p.ld), xs(p.Q * std::max(s.dk, s.dv)), S(s.dk * s.dv) {
    if (!backward) return;
    m.resize(p.Q * p.ld);
    dr.resize(p.Q * s.dv);
  }
};

// Pointers to chunk c of one (batch, head): rows of q/k (stride qs) and v/out (stride vs).
struct ChunkRows {
  int64_t t0, nq, qo, vo;  // first token, length, element offsets into q-like and v-like arrays
};
ChunkRows chunk_rows(const RetShape& s, const ChunkPlan& p, int64_t b, int64_t h, int64_t c) {
  ChunkRows r;
  r.t0 = c * p.Q;
  r.nq = std::min(p.Q, s.T - r.t0);
  r.qo = ((b * s.T + r.t0) * s.H + h) * s.dk;
  r.vo = ((b * s.T + r.t0) * s.H + h) * s.dv;
  return r;
}

// Outputs of one (batch, head), chunk after chunk. S (dk, dv) enters with the state (unread
// when !has_state) and leaves with the final one when want_state.
void chunk_fwd_head(const RetShape& s, const ChunkPlan& p, int64_t b, int64_t h, const float* q,
                    const float* k, const float* v, float* out, bool has_state, bool want_state,
                    ChunkScratch& sc) {
  const float *pw = p.pw_of(h), *rev = p.rev_of(h), *rowc = p.rowc.data() + h * s.T;
  float *A = sc.a.data(), *xs = sc.xs.data(), *S = sc.S.data();
  for (int64_t c = 0; c < p.nc; ++c) {
    const ChunkRows r = chunk_rows(s, p, b, h, c);
    const int64_t nq = r.nq;
    const float *Qc = q + r.qo, *Kc = k + r.qo, *Vc = v + r.vo;  // (nq, dk), (nq, dk), (nq, dv)
    float* Oc = out + r.vo;                                      // (nq, dv)
    tri_abt(nq, s.dk, Qc, p.qs, Kc, p.qs, A, p.ld);
    decay_mask(
        nq, [nq](int64_t i) { return tri_end(i, nq); }, rev, p.Q - 1, A, p.ld);
    if (has_state) {  // O = (g^(i+1) q_i) S: what the earlier tokens contribute
      scale_rows(nq, s.dk, pw + 1, 1, Qc, p.qs, xs, s.dk);
      gemm(false, false, nq, s.dv, s.dk, 1.0f, xs, s.dk, S, s.dv, 0.0f, Oc, p.vs);
    }
    tri_mm(nq, s.dv, A, p.ld, Vc, p.vs, has_state ? 1.0f : 0.0f, Oc, p.vs);
    scale_rows(nq, s.dv, rowc + r.t0, 1, Oc, p.vs, Oc, p.vs);
    if (c + 1 == p.nc && !want_state) break;
    // S = g^nq S + sum_j (g^(nq-1-j) k_j)^T v_j.
    scale_rows(nq, s.dk, pw + nq - 1, -1, Kc, p.qs, xs, s.dk);
    gemm(true, false, s.dk, s.dv, nq, 1.0f, xs, s.dk, Vc, p.vs, has_state ? pw[nq] : 0.0f, S, s.dv);
    has_state = true;
  }
}

void chunk_fwd(const RetShape& s, int64_t chunk, const float* q, const float* k, const float* v,
               const float* gamma, float* out, const float* state_in, float* state_out,
               int64_t pos0) {
  const ChunkPlan p = make_chunk_plan(s, chunk, gamma, pos0);
  const int64_t SZ = s.dk * s.dv;
#pragma omp parallel
  {
    ChunkScratch sc(p, s, false);
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t h = 0; h < s.H; ++h) {
        if (state_in) std::copy_n(state_in + (b * s.H + h) * SZ, SZ, sc.S.data());
        chunk_fwd_head(s, p, b, h, q, k, v, out, state_in != nullptr, state_out != nullptr, sc);
        if (state_out) std::copy_n(sc.S.data(), SZ, state_out + (b * s.H + h) * SZ);
      }
  }
}

// Gradients of one (batch, head). st: (nc, dv, dk) scratch for the transposed states S_c^T
// entering the chunks (transposed so that dq's product with them is a plain one, which
// oneDNN runs faster than a transposed operand).
void chunk_bwd_head(const RetShape& s, const ChunkPlan& p, int64_t b, int64_t h, const float* q,
                    const float* k, const float* v, const float* dout, float* dq, float* dk,
                    float* dv, float* st, ChunkScratch& sc) {
  const float *pw = p.pw_of(h), *rev = p.rev_of(h), *rowc = p.rowc.data() + h * s.T;
  const int64_t DK = s.dk, DV = s.dv, SZ = DK * DV;
  float *A = sc.a.data(), *M = sc.m.data(), *xs = sc.xs.data(), *dr = sc.dr.data();
  float* U = sc.S.data();
  // Forward sweep: only dq reads the entering states S_c (st[0] = 0 is never read).
  if (dq)
    for (int64_t c = 0; c + 1 < p.nc; ++c) {
      const ChunkRows r = chunk_rows(s, p, b, h, c);
      float* next = st + (c + 1) * SZ;  // (dv, dk)
      scale_rows(r.nq, DK, pw + r.nq - 1, -1, k + r.qo, p.qs, xs, DK);
      gemm(true, false, DV, DK, r.nq, 1.0f, v + r.vo, p.vs, xs, DK, 0.0f, next, DK);
      if (c > 0) {
        const float* cur = st + c * SZ;
        const float dec = pw[r.nq];
#pragma omp simd
        for (int64_t e = 0; e < SZ; ++e) next[e] += dec * cur[e];
      }
    }
  // Reverse sweep with the reverse state U.
  bool has_u = false;
  for (int64_t c = p.nc - 1; c >= 0; --c) {
    const ChunkRows r = chunk_rows(s, p, b, h, c);
    const int64_t nq = r.nq;
    const float *Qc = q + r.qo, *Kc = k + r.qo, *Vc = v + r.vo;  // (nq, dk), (nq, dk), (nq, dv)
    auto cols = [nq](int64_t i) { return tri_end(i, nq); };
    scale_rows(nq, DV, rowc + r.t0, 1, dout + r.vo, p.vs, dr, DV);  // dR = c dout
    if (dv) {
      float* dVc = dv + r.vo;
      tri_abt(nq, DK, Qc, p.qs, Kc, p.qs, A, p.ld);
      decay_mask(nq, cols, rev, p.Q - 1, A, p.ld);
      tri_tmm(nq, DV, A, p.ld, dr, DV, dVc, p.vs);
      if (has_u) {
        scale_rows(nq, DK, pw + nq, -1, Kc, p.qs, xs, DK);
        gemm(false, false, nq, DV, DK, 1.0f, xs, DK, U, DV, 1.0f, dVc, p.vs);
      }
    }
    if (dq || dk) {
      tri_abt(nq, DV, dr, DV, Vc, p.vs, M, p.ld);
      decay_mask(nq, cols, rev, p.Q - 1, M, p.ld);
      if (dq) {
        float* dQc = dq + r.qo;
        tri_mm(nq, DK, M, p.ld, Kc, p.qs, 1.0f, dQc, p.qs);
        if (c > 0) {
          scale_rows(nq, DV, pw + 1, 1, dr, DV, xs, DV);
          gemm(false, false, nq, DK, DV, 1.0f, xs, DV, st + c * SZ, DK, 1.0f, dQc, p.qs);
        }
      }
      if (dk) {
        float* dKc = dk + r.qo;
        tri_tmm(nq, DK, M, p.ld, Qc, p.qs, dKc, p.qs);
        if (has_u) {
          scale_rows(nq, DV, pw + nq, -1, Vc, p.vs, xs, DV);
          gemm(false, true, nq, DK, DV, 1.0f, xs, DV, U, DV, 1.0f, dKc, p.qs);
        }
      }
    }
    if (c > 0 && (dk || dv)) {  // U = g^nq U + sum_i (g^i q_i)^T dR_i
      scale_rows(nq, DK, pw, 1, Qc, p.qs, xs, DK);
      gemm(true, false, DK, DV, nq, 1.0f, xs, DK, dr, DV, has_u ? pw[nq] : 0.0f, U, DV);
      has_u = true;
    }
  }
}

void chunk_bwd(const RetShape& s, int64_t chunk, const float* q, const float* k, const float* v,
               const float* gamma, const float* dout, float* dq, float* dk, float* dv) {
  const ChunkPlan p = make_chunk_plan(s, chunk, gamma, 0);
  const size_t nst = dq ? p.nc * s.dk * s.dv : 0;  // (nc, dv, dk) per thread
#pragma omp parallel
  {
    ChunkScratch sc(p, s, true);
    // The states of a (batch, head) run to MBs at long T; fresh pages every call cost more than
    // the arithmetic on them, so each worker thread keeps its buffer between calls.
    thread_local std::vector<float> st;
    if (st.size() < nst) st.resize(nst);
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t h = 0; h < s.H; ++h)
        chunk_bwd_head(s, p, b, h, q, k, v, dout, dq, dk, dv, st.data(), sc);
  }
}

// ---- parallel form -----------------------------------------------------------------------

// revT (H, T + kTile + 16): g^(T-1-x) for x < T, else 0. Row i of tile (i0, j0) has the mask
// revT + (T-1-i0+j0) - i: g^(n-m) left of the diagonal, 0 right of it.
std::vector<float> parallel_table(const RetShape& s, const float* gamma, int64_t* stride) {
  *stride = s.T + kTile + 16;
  std::vector<float> t(s.H * *stride, 0.0f);
  for (int64_t h = 0; h < s.H; ++h) {
    const double lg = std::log(static_cast<double>(gamma[h]));
    for (int64_t x = 0; x < s.T; ++x)
      t[h * *stride + x] = static_cast<float>(std::exp((s.T - 1 - x) * lg));
  }
  return t;
}

// c: (B, H, T) the parallel form's row factors 1 / (sqrt(rowsum_n) max(|s_n|, 1)). A running
// decayed key sum kd_n = g kd_{n-1} + k_n gives s_n = q_n . kd_n / sqrt(rowsum_n) in O(T dk),
// so forward and backward share one cheap pass instead of a second quadratic one.
void parallel_row_factors(const RetShape& s, const float* q, const float* k, const float* gamma,
                          float* c) {
  const int64_t qs = s.H * s.dk;
#pragma omp parallel
  {
    std::vector<float> kd(s.dk);  // (dk)
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t h = 0; h < s.H; ++h) {
        const float g = gamma[h];
        std::fill(kd.begin(), kd.end(), 0.0f);
        double rs = 0.0;
        for (int64_t n = 0; n < s.T; ++n) {
          const float* qn = q + (b * s.T + n) * qs + h * s.dk;
          const float* kn = k + (b * s.T + n) * qs + h * s.dk;
          float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
          for (int64_t d = 0; d < s.dk; ++d) {
            kd[d] = g * kd[d] + kn[d];
            dot += qn[d] * kd[d];
          }
          rs = rs * g + 1.0;
          const double sq = std::sqrt(rs), sn = dot / sq;
          c[(b * s.H + h) * s.T + n] =
              static_cast<float>(1.0 / (sq * std::max(std::fabs(sn), 1.0)));
        }
      }
  }
}

void parallel_fwd(const RetShape& s, const float* q, const float* k, const float* v,
                  const float* gamma, float* out, float* state_out) {
  const int64_t qs = s.H * s.dk, vs = s.H * s.dv, nt = (s.T + kTile - 1) / kTile;
  int64_t ts = 0;
  const std::vector<float> revT = parallel_table(s, gamma, &ts);
  std::vector<float> cf(s.B * s.H * s.T);  // (B, H, T)
  parallel_row_factors(s, q, k, gamma, cf.data());
#pragma omp parallel
  {
    std::vector<float> sb(kTile * kTile);  // (tile, tile) masked scores
#pragma omp for collapse(3) schedule(dynamic, 1)
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t h = 0; h < s.H; ++h)
        for (int64_t it = 0; it < nt; ++it) {
          const int64_t i0 = it * kTile, ni = std::min(kTile, s.T - i0);
          const float* Qi = q + (b * s.T + i0) * qs + h * s.dk;  // (ni, dk)
          float* Oi = out + (b * s.T + i0) * vs + h * s.dv;      // (ni, dv)
          for (int64_t j0 = 0; j0 <= i0; j0 += kTile) {
            const int64_t nj = std::min(kTile, s.T - j0);
            const float* Kj = k + (b * s.T + j0) * qs + h * s.dk;  // (nj, dk)
            const float* Vj = v + (b * s.T + j0) * vs + h * s.dv;  // (nj, dv)
            gemm(false, true, ni, nj, s.dk, 1.0f, Qi, qs, Kj, qs, 0.0f, sb.data(), kTile);
            decay_mask(
                ni, [nj](int64_t) { return nj; }, revT.data() + h * ts, s.T - 1 - i0 + j0,
                sb.data(), kTile);
            gemm(false, false, ni, s.dv, nj, 1.0f, sb.data(), kTile, Vj, vs, j0 ? 1.0f : 0.0f, Oi,
                 vs);
          }
          scale_rows(ni, s.dv, cf.data() + (b * s.H + h) * s.T + i0, 1, Oi, vs, Oi, vs);
        }
  }
  if (!state_out) return;
    // S_T = sum_m (g^(T-1-m) k_m)^T v_m, tile by tile.
#pragma omp parallel
  {
    std::vector<float> ks(kTile * s.dk);  // (tile, dk)
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t h = 0; h < s.H; ++h)
        for (int64_t j0 = 0; j0 < s.T; j0 += kTile) {
          const int64_t nj = std::min(kTile, s.T - j0);
          scale_rows(nj, s.dk, revT.data() + h * ts + j0, 1, k + (b * s.T + j0) * qs + h * s.dk, qs,
                     ks.data(), s.dk);
          gemm(true, false, s.dk, s.dv, nj, 1.0f, ks.data(), s.dk,
               v + (b * s.T + j0) * vs + h * s.dv, vs, j0 ? 1.0f : 0.0f,
               state_out + (b * s.H + h) * s.dk * s.dv, s.dv);
        }
  }
}

void parallel_bwd(const RetShape& s, const float* q, const float* k, const float* v,
                  const float* gamma, const float* dout, float* dq, float* dk, float* dv) {
  const int64_t qs = s.H * s.dk, vs = s.H * s.dv;
  int64_t ts = 0;
  const std::vector<float> revT = parallel_table(s, gamma, &ts);
  std::vector<float> cf(s.B * s.H * s.T);  // (B, H, T)
  parallel_row_factors(s, q, k, gamma, cf.data());
  // A task owns one (batch, head), so the dk, dv rows it accumulates are private to it.
#pragma omp parallel
  {
    std::vector<float> pb(kTile * kTile), mb(kTile * kTile);  // (tile, tile) masked products
    std::vector<float> dr(kTile * s.dv);                      // (tile, dv) dR = c dout
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t h = 0; h < s.H; ++h) {
        const float* tab = revT.data() + h * ts;
        for (int64_t i0 = 0; i0 < s.T; i0 += kTile) {
          const int64_t ni = std::min(kTile, s.T - i0), qo = (b * s.T + i0) * qs + h * s.dk;
          scale_rows(ni, s.dv, cf.data() + (b * s.H + h) * s.T + i0, 1,
                     dout + (b * s.T + i0) * vs + h * s.dv, vs, dr.data(), s.dv);
          for (int64_t j0 = 0; j0 <= i0; j0 += kTile) {
            const int64_t nj = std::min(kTile, s.T - j0), ko = (b * s.T + j0) * qs + h * s.dk;
            const int64_t vo = (b * s.T + j0) * vs + h * s.dv;
            auto cols = [nj](int64_t) { return nj; };
            if (dv) {  // P = q k^T masked; dV_j += P^T dR
              gemm(false, true, ni, nj, s.dk, 1.0f, q + qo, qs, k + ko, qs, 0.0f, pb.data(), kTile);
              decay_mask(ni, cols, tab, s.T - 1 - i0 + j0, pb.data(), kTile);
              gemm(true, false, nj, s.dv, ni, 1.0f, pb.data(), kTile, dr.data(), s.dv, 1.0f,
                   dv + vo, vs);
            }
            if (!dq && !dk) continue;
            // M = dR v^T masked; dQ_i += M K_j; dK_j += M^T Q_i
            gemm(false, true, ni, nj, s.dv, 1.0f, dr.data(), s.dv, v + vo, vs, 0.0f, mb.data(),
                 kTile);
            decay_mask(ni, cols, tab, s.T - 1 - i0 + j0, mb.data(), kTile);
            if (dq)
              gemm(false, false, ni, s.dk, nj, 1.0f, mb.data(), kTile, k + ko, qs, 1.0f, dq + qo,
                   qs);
            if (dk)
              gemm(true, false, nj, s.dk, ni, 1.0f, mb.data(), kTile, q + qo, qs, 1.0f, dk + ko,
                   qs);
          }
        }
      }
  }
}

}  // namespace

void retention_fwd(const RetShape& s, RetForm form, int64_t chunk, const float* q, const float* k,
                   const float* v, const float* gamma, float* out, const float* state_in,
                   float* state_out, int64_t pos0) {
  check_args(s, form, chunk, gamma, "retention_fwd");
  PF_CHECK(pos0 >= 0, "retention_fwd: pos0 must be >= 0, got ", pos0);
  if (form == RetForm::Parallel) {
    // Its normaliser max(|s_n|, 1) would need every earlier key, not just a state.
    PF_CHECK(!state_in && pos0 == 0,
             "retention_fwd: state_in and pos0 > 0 need the chunkwise form, not the parallel one");
    parallel_fwd(s, q, k, v, gamma, out, state_out);
    return;
  }
  chunk_fwd(s, chunk, q, k, v, gamma, out, state_in, state_out, pos0);
}

void retention_bwd(const RetShape& s, RetForm form, int64_t chunk, const float* q, const float* k,
                   const float* v, const float* gamma, const float* dout, float* dq, float* dk,
                   float* dv) {
  check_args(s, form, chunk, gamma, "retention_bwd");
  if (!dq && !dk && !dv) return;
  if (form == RetForm::Parallel)
    parallel_bwd(s, q, k, v, gamma, dout, dq, dk, dv);
  else
    chunk_bwd(s, chunk, q, k, v, gamma, dout, dq, dk, dv);
}

void retention_step(const RetShape& s, const float* q, const float* k, const float* v,
                    const float* gamma, float* state, int64_t pos, float* out) {
  std::vector<int64_t> p(s.B, pos);
  retention_step(s, q, k, v, gamma, state, p.data(), out, nullptr);
}

void retention_step(const RetShape& s, const float* q, const float* k, const float* v,
                    const float* gamma, float* state, const int64_t* pos, float* out,
                    const int64_t* slots) {
  check_args(s, RetForm::Chunkwise, 1, gamma, "retention_step");
  for (int64_t b = 0; b < s.B; ++b)
    PF_CHECK(pos[b] >= 0, "retention_step: pos must be >= 0, got ", pos[b]);
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h) {
      const float g = gamma[h];
      const float* qh = q + (b * s.H + h) * s.dk;
      const float* kh = k + (b * s.H + h) * s.dk;
      const float* vh = v + (b * s.H + h) * s.dv;
      float* S = state + ((slots ? slots[b] : b) * s.H + h) * s.dk * s.dv;  // (dk, dv)
      float* o = out + (b * s.H + h) * s.dv;                                // (dv)
      std::fill_n(o, s.dv, 0.0f);
      for (int64_t d = 0; d < s.dk; ++d) {  // S = g S + k^T v; o = q S, row by row
        float* Sd = S + d * s.dv;
        const float kd = kh[d], qd = qh[d];
#pragma omp simd
        for (int64_t e = 0; e < s.dv; ++e) {
          Sd[e] = g * Sd[e] + kd * vh[e];
          o[e] += qd * Sd[e];
        }
      }
      const float c = static_cast<float>(1.0 / std::sqrt(rowsum(g, pos[b])));
      for (int64_t e = 0; e < s.dv; ++e) o[e] *= c;
    }
}

void retention_ref(const RetShape& s, RetForm form, const float* q, const float* k, const float* v,
                   const float* gamma, float* out, const float* state_in, float* state_out,
                   int64_t pos0) {
  check_args(s, form, 1, gamma, "retention_ref");
  const bool par = form == RetForm::Parallel;
  PF_CHECK(!par || (!state_in && pos0 == 0),
           "retention_ref: state_in and pos0 > 0 need the chunkwise form");
  const int64_t qs = s.H * s.dk, vs = s.H * s.dv, SZ = s.dk * s.dv;
  std::vector<double> S0(SZ), S(SZ), o(s.dv);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h) {
      const double g = gamma[h];
      for (int64_t e = 0; e < SZ; ++e) S0[e] = state_in ? state_in[(b * s.H + h) * SZ + e] : 0.0;
      double rs = 0.0;  // rowsum, by the recurrence scale_t = scale_{t-1} g + 1
      for (int64_t t = 0; t < pos0; ++t) rs = rs * g + 1.0;
      for (int64_t n = 0; n < s.T; ++n) {
        rs = rs * g + 1.0;
        const float* qn = q + (b * s.T + n) * qs + h * s.dk;
        std::fill(o.begin(), o.end(), 0.0);
        double sn = 0.0;
        for (int64_t m = 0; m <= n; ++m) {
          const float* km = k + (b * s.T + m) * qs + h * s.dk;
          const float* vm = v + (b * s.T + m) * vs + h * s.dv;
          double qk = 0.0;
          for (int64_t d = 0; d < s.dk; ++d) qk += static_cast<double>(qn[d]) * km[d];
          // Parallel: D[n, m] = g^(n-m) / sqrt(rowsum_n); chunkwise: g^(n-m), scaled below.
          const double w = qk * std::pow(g, n - m) / (par ? std::sqrt(rs) : 1.0);
          sn += w;
          for (int64_t e = 0; e < s.dv; ++e) o[e] += w * vm[e];
        }
        if (!par && state_in) {  // g^(n+1) q_n S_in
          const double gn = std::pow(g, n + 1);
          for (int64_t d = 0; d < s.dk; ++d)
            for (int64_t e = 0; e < s.dv; ++e) o[e] += gn * qn[d] * S0[d * s.dv + e];
        }
        const double c = par ? 1.0 / std::max(std::fabs(sn), 1.0) : 1.0 / std::sqrt(rs);
        float* on = out + (b * s.T + n) * vs + h * s.dv;
        for (int64_t e = 0; e < s.dv; ++e) on[e] = static_cast<float>(o[e] * c);
      }
      if (!state_out) continue;
      S = S0;  // S = g S + k^T v, token by token
      for (int64_t m = 0; m < s.T; ++m) {
        const float* km = k + (b * s.T + m) * qs + h * s.dk;
        const float* vm = v + (b * s.T + m) * vs + h * s.dv;
        for (int64_t d = 0; d < s.dk; ++d)
          for (int64_t e = 0; e < s.dv; ++e)
            S[d * s.dv + e] = g * S[d * s.dv + e] + static_cast<double>(km[d]) * vm[e];
      }
      for (int64_t e = 0; e < SZ; ++e) state_out[(b * s.H + h) * SZ + e] = static_cast<float>(S[e]);
    }
}

}  // namespace pf::cpu
