// Differentiable RetNet retention (see kernels/cpu/retention.h for the forms and factors).
#pragma once
#include <cstdint>

#include "autograd/tape.h"
#include "kernels/cpu/retention.h"

namespace pf {

using cpu::RetForm;

// q, k: (B, T, H, dk); v: (B, T, H, dv); gamma: (H) fixed decays in (0, 1), not trained
// -> (B, T, H, dv). Zero initial state. The per-row factors c_n are constants in the backward
// (as torchscale detaches them); a scale-invariant head norm follows in the model. `chunk`
// (>= 1) is the chunkwise form's chunk length and only trades speed; Parallel ignores it.
Var retention(const Var& q, const Var& k, const Var& v, const Tensor& gamma, RetForm form,
              int64_t chunk);

}  // namespace pf
