// A sequence mixer: the per-layer block body that differs between Mamba-1 and
// Mamba-2 (and, later, attention or retention in hybrids). The model stack around it
// (embedding, pre-norm residual, final norm, head) is shared.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "models/mamba/mamba_config.h"
#include "nn/params.h"

namespace pf {

// Per-layer recurrent state for inference; its size does not grow with context.
struct MixerState {
  std::vector<std::pair<std::string, Tensor>> tensors;  // named, e.g. conv_state, ssm_state
};

class Mixer {
 public:
  virtual ~Mixer() = default;
  // prefix is e.g. "backbone.layers.3.mixer."
  virtual void visit(const std::string& prefix, const ParamVisitor& visit) = 0;
  // Training / full-sequence forward: h (B, L, d_model) -> (B, L, d_model).
  virtual Var forward(const Var& h, int64_t B, int64_t L) = 0;
  // Inference on n new tokens of one sequence: h (1, n, d_model) -> (1, n, d_model),
  // continuing from and updating `state`.
  virtual Var forward_inference(const Var& h, int64_t n, MixerState& state) = 0;
  virtual MixerState new_state() const = 0;
  virtual int64_t state_bytes() const = 0;
  // Forward FLOPs per token outside the projections counted as matrix parameters.
  virtual double extra_flops_per_token() const = 0;
};

std::unique_ptr<Mixer> make_mamba1_mixer(const MambaConfig& c, int64_t layer, Rng& rng);
std::unique_ptr<Mixer> make_mamba2_mixer(const MambaConfig& c, int64_t layer, Rng& rng);

// Initialisation helpers shared by both mixers (SPEC.md, "Init").
// dt bias: softplus^-1 of dt drawn log-uniformly in [dt_min, dt_max], floored at 1e-4.
Var mamba_dt_bias(int64_t n, Rng& rng);
// PyTorch's default Linear/Conv init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
Var uniform_fan_in(const Shape& shape, int64_t fan_in, Rng& rng);
// out_proj (d, di): default init scaled by 1/sqrt(n_layer) (prenorm residual rescale).
Var rescaled_out_proj(int64_t d, int64_t di, int64_t n_layer, Rng& rng);

}  // namespace pf
