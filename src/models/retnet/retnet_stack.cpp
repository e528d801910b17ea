// The stack a RetNet config describes: retention + SwiGLU MLP in every layer.
#include <cmath>

#include "models/retnet/retnet.h"
#include "models/retnet/retnet_config.h"

namespace pf {

StackSpec retnet_stack(const nlohmann::json& j) {
  const RetNetConfig c = RetNetConfig::from_json(j);
  StackSpec s;
  s.arch = "retnet";
  s.config = c.to_json();
  s.vocab = c.vocab_size;
  s.d_model = c.hidden_size;
  s.norm_eps = c.norm_eps;
  s.tied = c.tie_word_embeddings;
  s.embedding = "model.embeddings.weight";
  s.final_norm = "model.norm.weight";
  s.rng_stream = 3;
  s.prefill_chunk = 2048;
  RetentionSpec r;
  r.variant = c.variant;
  r.d = c.hidden_size;
  r.heads = c.num_heads;
  r.head_k = c.head_k();
  r.head_v = c.head_v();
  r.gammas = c.gammas();
  r.chunk = c.chunk;
  r.prefill = c.prefill;
  r.parallel_training = c.parallel_training;
  r.head_norm_eps = c.head_norm_eps;
  if (c.head_norm_weight)
    r.head_norm_name = c.fused_gate_name ? "g_norm_swish_gate.weight" : "g_norm.weight";
  r.rope_theta = c.rope_theta;
  r.out_std = 0.02f / std::sqrt(2.0f * c.num_hidden_layers);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    BlockSpec b;
    b.prefix = "model.layers." + std::to_string(l) + ".";
    b.norm = "attn_norm.weight";
    b.mixer_name = "attn.";
    set_mixer(b, 'R', r, make_retention);
    b.mlp.layout = c.separate_mlp ? MlpLayout::Separate : MlpLayout::FusedGateUp;
    b.mlp.ffn = c.ffn();
    b.mlp.norm = "mlp_norm.weight";
    b.mlp.gate = "mlp.gate_proj.weight";
    b.mlp.up = "mlp.up_proj.weight";
    b.mlp.down = "mlp.down_proj.weight";
    b.mlp.out_std = r.out_std;
    s.layers.push_back(std::move(b));
  }
  return s;
}

}  // namespace pf
