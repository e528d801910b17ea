// Causal grouped-query self-attention with RoPE (Llama's self_attn): q, k, v and o
// projections without bias. The cached form appends each run's keys and values to its
// slot's KV cache and attends over everything that slot holds.
#pragma once
#include <memory>

#include "kernels/cpu/rope.h"
#include "models/core/mixer.h"

namespace pf {

struct AttentionSpec {
  int64_t d = 0, heads = 1, kv_heads = 1, head_dim = 0;
  cpu::RopeStyle rope;  // Llama: rotate-half, theta from the config
  float init_std = 0.02f, out_std = 0.02f;
  int64_t param_count() const { return 2 * d * heads * head_dim + 2 * d * kv_heads * head_dim; }
};

std::unique_ptr<Mixer> make_attention(const AttentionSpec& s, Rng& rng);

}  // namespace pf
