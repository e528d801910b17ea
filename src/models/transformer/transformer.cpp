#include "models/transformer/transformer.h"

#include <cmath>

#include "autograd/ops.h"
#include "base/checks.h"
#include "base/error.h"
#include "io/config_json.h"
#include "models/limits.h"
#include "models/mixers/attention.h"

namespace pf {

TransformerConfig TransformerConfig::from_json(const nlohmann::json& j) {
  TransformerConfig c;
  c.source = j;
  c.hidden_size = json_int(j, "hidden_size");
  c.intermediate_size = json_int(j, "intermediate_size");
  c.num_attention_heads = json_int(j, "num_attention_heads");
  c.num_hidden_layers = json_int(j, "num_hidden_layers");
  c.vocab_size = json_int(j, "vocab_size");
  c.num_key_value_heads = json_int(j, "num_key_value_heads", c.num_attention_heads);
  c.max_position_embeddings = json_int(j, "max_position_embeddings", 2048);
  c.rms_norm_eps = json_num(j, "rms_norm_eps", 1e-6);
  c.rope_theta = json_num(j, "rope_theta", 10000.0);
  c.tie_word_embeddings = json_bool(j, "tie_word_embeddings", false);
  check_range("config: hidden_size", c.hidden_size, 1, kMaxWidth);
  check_range("config: intermediate_size", c.intermediate_size, 1, kMaxFfn);
  check_range("config: num_hidden_layers", c.num_hidden_layers, 1, kMaxLayers);
  check_range("config: vocab_size", c.vocab_size, 1, kMaxVocab);
  check_range("config: num_attention_heads", c.num_attention_heads, 1, c.hidden_size);
  check_range("config: num_key_value_heads", c.num_key_value_heads, 1, c.num_attention_heads);
  check_range("config: max_position_embeddings", c.max_position_embeddings, 1, kMaxPositions);
  check_range("config: rms_norm_eps", c.rms_norm_eps, 0.0, 1.0, /*open_lo=*/true);
  check_range("config: rope_theta", c.rope_theta, 0.0, 1e12, /*open_lo=*/true);
  PF_CHECK(c.hidden_size % c.num_attention_heads == 0, "config: hidden_size ", c.hidden_size,
           " is not divisible by num_attention_heads ", c.num_attention_heads);
  PF_CHECK(c.num_attention_heads % c.num_key_value_heads == 0, "config: num_attention_heads ",
           c.num_attention_heads, " is not divisible by num_key_value_heads ",
           c.num_key_value_heads);
  PF_CHECK(c.head_dim() % 2 == 0, "config: head dim ", c.head_dim(), " must be even for RoPE");
  // Variants this implementation does not compute must not load silently wrong.
  PF_CHECK(!j.contains("rope_scaling") || j["rope_scaling"].is_null(),
           "config: rope_scaling is not supported (plain RoPE only)");
  PF_CHECK(!json_bool(j, "attention_bias", false), "config: attention_bias is not supported");
  PF_CHECK(!json_bool(j, "mlp_bias", false), "config: mlp_bias is not supported");
  if (j.contains("hidden_act"))
    PF_CHECK(j["hidden_act"] == "silu", "config: hidden_act ", j["hidden_act"].dump(),
             " is not supported (silu only)");
  if (j.contains("head_dim") && j["head_dim"].is_number_integer())
    PF_CHECK(j["head_dim"].get<int64_t>() == c.head_dim(),
             "config: head_dim other than hidden_size / num_attention_heads is not supported");
  return c;
}

nlohmann::json TransformerConfig::to_json() const {
  nlohmann::json j = source.is_object() ? source : nlohmann::json::object();
  j.update(nlohmann::json{{"architectures", {"LlamaForCausalLM"}},
                          {"model_type", "llama"},
                          {"hidden_size", hidden_size},
                          {"intermediate_size", intermediate_size},
                          {"num_attention_heads", num_attention_heads},
                          {"num_key_value_heads", num_key_value_heads},
                          {"num_hidden_layers", num_hidden_layers},
                          {"max_position_embeddings", max_position_embeddings},
                          {"rms_norm_eps", rms_norm_eps},
                          {"rope_theta", rope_theta},
                          {"vocab_size", vocab_size},
                          {"tie_word_embeddings", tie_word_embeddings},
                          {"hidden_act", "silu"},
                          {"torch_dtype", "float32"}});
  return j;
}

BlockSpec llama_attention_block(int64_t l, const AttentionSpec& a, int64_t ffn) {
  BlockSpec b;
  b.prefix = "model.layers." + std::to_string(l) + ".";
  b.norm = "input_layernorm.weight";
  b.mixer_name = "self_attn.";
  set_mixer(b, 'A', a, make_attention);
  b.mlp = MlpSpec{MlpLayout::Separate,
                  ffn,
                  "post_attention_layernorm.weight",
                  "mlp.gate_proj.weight",
                  "mlp.up_proj.weight",
                  "mlp.down_proj.weight",
                  0.02f,
                  a.out_std};
  return b;
}

StackSpec transformer_stack(const nlohmann::json& j) {
  const TransformerConfig c = TransformerConfig::from_json(j);
  StackSpec s;
  s.arch = "transformer";
  s.config = c.to_json();
  s.vocab = c.vocab_size;
  s.d_model = c.hidden_size;
  s.norm_eps = c.rms_norm_eps;
  s.tied = c.tie_word_embeddings;
  s.embedding = "model.embed_tokens.weight";
  s.final_norm = "model.norm.weight";
  s.rng_stream = 1;
  s.max_context = c.max_position_embeddings;
  AttentionSpec a;
  a.d = c.hidden_size;
  a.heads = c.num_attention_heads;
  a.kv_heads = c.num_key_value_heads;
  a.head_dim = c.head_dim();
  a.rope = cpu::RopeStyle{static_cast<float>(c.rope_theta), false, false};
  // Residual output projections are scaled down so the stream's variance stays O(1).
  a.out_std = 0.02f / std::sqrt(2.0f * c.num_hidden_layers);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l)
    s.layers.push_back(llama_attention_block(l, a, c.intermediate_size));
  return s;
}

}  // namespace pf
