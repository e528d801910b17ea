// mamba_ssm's MHA module (mamba_ssm/modules/mha.py), the attention layer of its hybrid
// models (mamba2attn): one fused in_proj for [q | k | v], an optional causal depthwise conv
// over those channels (no activation), partial rotary on the first rotary_dim dims of each
// head (rotate-half), grouped-query causal attention, out_proj. No biases, no MLP part.
#pragma once
#include <memory>

#include "models/core/mixer.h"

namespace pf {

struct MhaSpec {
  int64_t d = 0, heads = 1, kv_heads = 1, head_dim = 0;
  int64_t d_conv = 0;      // 0: no conv1d
  int64_t rotary_dim = 0;  // 0: no rotary
  double rotary_base = 10000.0;
  bool rotary_interleaved = false;
  int64_t n_layer = 1;
  int64_t qkv_dim() const { return head_dim * (heads + 2 * kv_heads); }
  int64_t param_count() const {
    return qkv_dim() * d + (d_conv > 0 ? qkv_dim() * (d_conv + 1) : 0) + d * heads * head_dim;
  }
};

std::unique_ptr<Mixer> make_mha(const MhaSpec& s, Rng& rng);

}  // namespace pf
