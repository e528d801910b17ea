// Differentiable ops of the Mamba-2 mixer: the SSD scan and the gated RMSNorm.
#pragma once
#include <cstdint>

#include "autograd/tape.h"

namespace pf {

// x: (B, L, H, P); dt: (B, L, H) before softplus; dt_bias, A_log, Dskip: (H); Bm, Cm:
// (B, L, G, N) with H % G == 0 -> y: (B, L, H, P). Starts from a zero state. dt_bias and
// Dskip may be undefined Vars (no bias, no skip). `chunk` only trades speed (see ssd.h).
Var ssd(const Var& x, const Var& dt, const Var& dt_bias, const Var& A_log, const Var& Bm,
        const Var& Cm, const Var& Dskip, int64_t chunk);

// x, z: (..., D); w: (D) -> (..., D): rmsnorm per group of D / groups of x * silu(z), times w.
Var gated_rmsnorm(const Var& x, const Var& z, const Var& w, int64_t groups, float eps);

}  // namespace pf
