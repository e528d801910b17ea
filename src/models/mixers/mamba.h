// Mamba-1 (selective scan) and Mamba-2 (SSD) mixers, as state-spaces/mamba's
// mamba_simple.py and mamba2.py define them. Their per-layer state (conv_state, ssm_state)
// has a fixed size, whatever the context.
#pragma once
#include <memory>

#include "models/core/mixer.h"

namespace pf {

struct Mamba1Spec {
  int64_t d = 0, d_inner = 0, d_state = 16, d_conv = 4, dt_rank = 1;
  int64_t n_layer = 1;  // out_proj init is rescaled by 1/sqrt(n_layer)
  int64_t param_count() const {
    return 2 * d_inner * d + d_inner * (d_conv + 1) + d_inner * (dt_rank + 2 * d_state) +
           d_inner * dt_rank + d_inner + d_inner * d_state + d_inner + d * d_inner;
  }
};

struct Mamba2Spec {
  int64_t d = 0, d_inner = 0, d_state = 128, d_conv = 4, headdim = 64, ngroups = 1;
  int64_t chunk = 256, n_layer = 1;
  double norm_eps = 1e-5;  // the gated RMSNorm
  int64_t nheads() const { return d_inner / headdim; }
  int64_t conv_dim() const { return d_inner + 2 * ngroups * d_state; }
  int64_t param_count() const {
    return (2 * d_inner + 2 * ngroups * d_state + nheads()) * d + conv_dim() * (d_conv + 1) +
           3 * nheads() + d_inner + d * d_inner;
  }
};

std::unique_ptr<Mixer> make_mamba1_mixer(const Mamba1Spec& s, Rng& rng);
std::unique_ptr<Mixer> make_mamba2_mixer(const Mamba2Spec& s, Rng& rng);

// Initialisation helpers shared by both mixers (SPEC.md, "Init").
// dt bias: softplus^-1 of dt drawn log-uniformly in [dt_min, dt_max], floored at 1e-4.
Var mamba_dt_bias(int64_t n, Rng& rng);
// PyTorch's default Linear/Conv init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
Var uniform_fan_in(const Shape& shape, int64_t fan_in, Rng& rng);
// out_proj (d, di): default init scaled by 1/sqrt(n_layer) (prenorm residual rescale).
Var rescaled_out_proj(int64_t d, int64_t di, int64_t n_layer, Rng& rng);

}  // namespace pf
