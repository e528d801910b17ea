// RetNet multi-scale retention (Sun et al. 2023; torchscale's multiscale_retention.py).
// Per head h with a fixed decay gamma in (0, 1), the un-normalised retention is
//   R_n = sum_{m <= n} gamma^(n - m) (q_n . k_m) v_m
// and every form returns out_n = c_n R_n with a positive per-row factor c_n:
//   parallel:  c_n = 1 / (sqrt(rowsum_n) * max(|s_n|, 1)), rowsum_n = sum_{m<=n} gamma^(n-m),
//              s_n = sum_{m<=n} (q_n . k_m) gamma^(n-m) / sqrt(rowsum_n)   (the paper's |sum|);
//   chunkwise and recurrent (step): c_n = 1 / sqrt(rowsum_n), as torchscale's recurrence.
// (torchscale's parallel code divides by sum_m |scores| clamped to [1, 5e4] instead of the
// paper's |sum_m scores|; after the eps-0 head norm both give the same output.)
// The model applies a scale-invariant head norm afterwards, so with head-norm eps = 0 all
// forms agree. The backward treats c_n as a constant (torchscale detaches its factors).
//
// State: the *un-normalised* S_t = sum_{m <= t} gamma^(t - m) k_m^T v_m, (dk, dv) per head.
// torchscale's recurrent state is S_t / sqrt(rowsum_t); multiply by sqrt(rowsum_t) to
// import one. rowsum is a closed form of the position, (1 - gamma^(t+1)) / (1 - gamma), so
// no scale is stored. chunkwise and step share this layout: prefill then decode continues.
//
// Memory: the parallel form builds its decay mask per (128, 128) tile, never (T, T); it is
// quadratic in time by nature. The chunkwise form is linear: (Q, Q) scratch per thread, and
// its backward keeps one (dk, dv) state per chunk of the (batch, head) a thread works on, in
// a buffer each worker thread keeps between calls (8 MiB at T 8192, chunk 32, dk 64, dv 128).
// Speed: on 2 AVX-512 cores chunk 32..64 is fastest (B 8, T 2048, H 6, dk 64, dv 128: fwd
// 30 ms, bwd 87 ms at 32); chunk 512, torchscale's default, takes twice as long.
// Threads split (batch, head) pairs (and query tiles in the parallel forward); each pair is
// done by one thread in a fixed order, so results do not depend on the thread count.
#pragma once
#include <cstdint>

namespace pf::cpu {

struct RetShape {
  int64_t B = 1, T = 1, H = 1, dk = 1, dv = 1;
};

enum class RetForm { Parallel, Chunkwise };

// q, k: (B, T, H, dk); v: (B, T, H, dv); gamma: (H) in (0, 1); out: (B, T, H, dv).
// chunk: chunk length of the chunkwise form (>= 1; values above T act as T; it changes
// only f32 rounding); ignored by the parallel form.
// state_in / state_out: (B, H, dk, dv) un-normalised states (see above), either may be null;
// state_out may be state_in itself (advanced in place). pos0: tokens consumed before q[0]
// (the position that rowsum counts from). state_in and pos0 > 0 need the chunkwise form;
// state_out works with both.
void retention_fwd(const RetShape& s, RetForm form, int64_t chunk, const float* q, const float* k,
                   const float* v, const float* gamma, float* out, const float* state_in = nullptr,
                   float* state_out = nullptr, int64_t pos0 = 0);

// Gradients of retention_fwd (zero initial state, pos0 = 0) given dout: (B, T, H, dv), with
// c_n held constant. Accumulates (+=) into dq, dk (B, T, H, dk) and dv (B, T, H, dv); any of
// them may be null. The parallel form's backward is tiled and quadratic like its forward.
void retention_bwd(const RetShape& s, RetForm form, int64_t chunk, const float* q, const float* k,
                   const float* v, const float* gamma, const float* dout, float* dq, float* dk,
                   float* dv);

// One decoding token (s.T is ignored): q, k: (B, H, dk); v: (B, H, dv); state: (B, H, dk, dv)
// un-normalised, advanced in place; pos: tokens before this one; out: (B, H, dv).
void retention_step(const RetShape& s, const float* q, const float* k, const float* v,
                    const float* gamma, float* state, int64_t pos, float* out);
// The same for B rows of different sequences: row b has consumed pos[b] tokens and its
// state sits at slot slots[b] of an (S, H, dk, dv) tensor (slot b when slots is null).
void retention_step(const RetShape& s, const float* q, const float* k, const float* v,
                    const float* gamma, float* state, const int64_t* pos, float* out,
                    const int64_t* slots);

// Reference for tests: retention_fwd computed naively in double precision, straight from the
// definitions above (the parallel form through its (T, T) decay mask D[n, m] =
// gamma^(n-m) / sqrt(rowsum_n), one row at a time).
void retention_ref(const RetShape& s, RetForm form, const float* q, const float* k, const float* v,
                   const float* gamma, float* out, const float* state_in = nullptr,
                   float* state_out = nullptr, int64_t pos0 = 0);

}  // namespace pf::cpu
