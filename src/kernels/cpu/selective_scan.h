// Mamba-1 selective scan (S6) on the CPU, fused: softplus of dt, discretisation, the
// recurrence and the output contraction run in one pass, so no (B, L, D, N) tensor is
// ever stored. Work is split over (batch, block of 16 channels); lanes hold channels,
// so the loads of u, dt, y along a channel block are contiguous.
//
//   delta_t = softplus(dt_t + dt_bias)                        (B, L, D)
//   h_t     = exp(delta_t * A) * h_{t-1} + delta_t * u_t * B_t  (per channel, over N)
//   y_t     = <h_t, C_t> + Dskip * u_t,   A = -exp(A_log)
#pragma once
#include <cstdint>

namespace pf::cpu {

struct ScanShape {
  int64_t B = 1, L = 1, D = 1, N = 16;  // batch, tokens, channels (d_inner), d_state
};

// The backward recomputes states in chunks of this many steps from saved checkpoints.
constexpr int64_t kScanCkptSteps = 64;
// Floats of a checkpoint buffer: B * ceil(D/16)*16 * ceil(N/16)*16 * ceil(L/64), i.e.
// B*L*D*N/64 (B*L*D/4 at N = 16). Its layout is private to these kernels.
int64_t selective_scan_ckpt_floats(const ScanShape& s);

// u, dt: (B, L, D) contiguous; dt_bias: (D) or null; A_log: (D, N); Bm, Cm: (B, L, N);
// Dskip: (D) or null; h0: (B, D, N) initial state or null (zeros).
// y: (B, L, D); h_last: (B, D, N) final state or null. h_last may alias h0 (in place).
// ckpt: null, or selective_scan_ckpt_floats(s) floats that receive the state before every
// kScanCkptSteps-th step, for selective_scan_bwd (saves it re-running the forward).
void selective_scan_fwd(const ScanShape& s, const float* u, const float* dt, const float* dt_bias,
                        const float* A_log, const float* Bm, const float* Cm, const float* Dskip,
                        const float* h0, float* y, float* h_last, float* ckpt = nullptr);

// Accumulates (+=) the gradients of sum(y * dy); any gradient pointer may be null (not
// wanted). Shapes as in the forward. ckpt: from selective_scan_fwd on the same inputs
// (the gradient is then that of the scan from its h0, with no gradient for h0 itself), or
// null: the scan is taken to start from h0 = 0 and the checkpoints are recomputed here
// (about 40% more time). States are rebuilt chunk by chunk from the checkpoints, so
// the extra memory is O(threads * (B*L*N + L*N)) floats, never O(B*L*D*N). Deterministic
// for a fixed thread count: reductions go through per-thread partials summed in order.
void selective_scan_bwd(const ScanShape& s, const float* u, const float* dt, const float* dt_bias,
                        const float* A_log, const float* Bm, const float* Cm, const float* Dskip,
                        const float* dy, float* du, float* ddt, float* ddt_bias, float* dA_log,
                        float* dBm, float* dCm, float* dDskip, const float* ckpt = nullptr);

// One token (decoding) for each of B rows: u, dt: (B, D); Bt, Ct: (B, N); h: (S, D, N)
// states updated in place, row b at slot slots[b] (slot b when slots is null); y: (B, D).
// Uses the same arithmetic as the forward, so a loop of steps tracks it to rounding.
void selective_scan_step(int64_t B, int64_t D, int64_t N, const float* u, const float* dt,
                         const float* dt_bias, const float* A_log, const float* Bt, const float* Ct,
                         const float* Dskip, float* h, float* y, const int64_t* slots = nullptr);

// Reference: the recurrence written out naively in double precision (tests, documentation).
void selective_scan_ref(const ScanShape& s, const float* u, const float* dt, const float* dt_bias,
                        const float* A_log, const float* Bm, const float* Cm, const float* Dskip,
                        const float* h0, float* y, float* h_last);

}  // namespace pf::cpu
