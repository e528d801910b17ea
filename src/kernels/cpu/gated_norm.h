// Mamba-2's gated RMSNorm (RMSNormGated with norm_before_gate = False): the gate is applied
// first, then each row is normalised per group of D / groups channels.
#pragma once
#include <cstdint>

namespace pf::cpu {

// x, z, y: (rows, D); w: (D); D % groups == 0; rstd: (rows, groups) saved for backward.
// v = x * silu(z); y = v / sqrt(mean over the group of v^2 + eps) * w.
void gated_rmsnorm_fwd(int64_t rows, int64_t D, int64_t groups, float eps, const float* x,
                       const float* z, const float* w, float* y, float* rstd);

// Accumulates dx, dz (rows, D) and dw (D); any of them may be null.
void gated_rmsnorm_bwd(int64_t rows, int64_t D, int64_t groups, const float* x, const float* z,
                       const float* w, const float* rstd, const float* dy, float* dx, float* dz,
                       float* dw);

}  // namespace pf::cpu
