// Differentiable ops of state-space models (Mamba-1): the selective scan and the causal
// depthwise conv1d before it. Each calls the fused CPU kernel and, when a tape records,
// registers the kernel's backward. Shapes are noted per op.
#pragma once
#include "autograd/tape.h"

namespace pf {

// u, dt: (B, L, D); dt_bias: (D) or undefined; A_log: (D, N); Bm, Cm: (B, L, N);
// Dskip: (D) or undefined -> y (B, L, D), from a zero initial state:
//   delta = softplus(dt + dt_bias), h_t = exp(delta_t A) h_{t-1} + delta_t u_t B_t,
//   y_t = <h_t, C_t> + Dskip u_t, A = -exp(A_log).
// When recording, keeps state checkpoints of B*L*D*N/64 floats for the backward.
Var selective_scan(const Var& u, const Var& dt, const Var& dt_bias, const Var& A_log, const Var& Bm,
                   const Var& Cm, const Var& Dskip);

// x: (B, L, C); w: (C, K); bias: (C) or undefined -> (B, L, C), zero left padding.
Var conv1d_causal(const Var& x, const Var& w, const Var& bias);

}  // namespace pf
