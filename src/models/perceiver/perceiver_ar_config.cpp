#include <cmath>

#include "base/checks.h"
#include "base/error.h"
#include "io/config_json.h"
#include "models/limits.h"
#include "models/perceiver/perceiver_ar.h"
#include "models/transformer/transformer.h"

namespace pf {

int64_t PerceiverArConfig::rotary_dim() const {
  // An even number of dims, at least one pair (the reference floors to even).
  const int64_t r = static_cast<int64_t>(std::floor(head_dim() * rotary_fraction / 2.0)) * 2;
  return std::max<int64_t>(2, r);
}

PerceiverArConfig PerceiverArConfig::from_json(const nlohmann::json& j) {
  PerceiverArConfig c;
  c.source = j;
  c.hidden_size = json_int(j, "hidden_size");
  c.intermediate_size = json_int(j, "intermediate_size");
  c.num_attention_heads = json_int(j, "num_attention_heads");
  c.num_hidden_layers = json_int(j, "num_hidden_layers");
  c.vocab_size = json_int(j, "vocab_size");
  c.num_key_value_heads = json_int(j, "num_key_value_heads", c.num_attention_heads);
  c.context_length = json_int(j, "context_length");
  c.num_latents = json_int(j, "num_latents");
  c.rms_norm_eps = json_num(j, "rms_norm_eps", 1e-5);
  c.rope_theta = json_num(j, "rope_theta", std::max<double>(8192.0, c.context_length));
  c.rotary_fraction = json_num(j, "rotary_fraction", 0.25);
  c.tie_word_embeddings = json_bool(j, "tie_word_embeddings", true);
  check_range("config: hidden_size", c.hidden_size, 1, kMaxWidth);
  check_range("config: intermediate_size", c.intermediate_size, 1, kMaxFfn);
  check_range("config: num_hidden_layers", c.num_hidden_layers, 1, kMaxLayers);
  check_range("config: vocab_size", c.vocab_size, 1, kMaxVocab);
  check_range("config: num_attention_heads", c.num_attention_heads, 1, c.hidden_size);
  check_range("config: num_key_value_heads", c.num_key_value_heads, 1, c.num_attention_heads);
  check_range("config: context_length", c.context_length, 1, kMaxPositions);
  check_range("config: num_latents", c.num_latents, 1, c.context_length);
  check_range("config: rms_norm_eps", c.rms_norm_eps, 0.0, 1.0, /*open_lo=*/true);
  check_range("config: rope_theta", c.rope_theta, 0.0, 1e12, /*open_lo=*/true);
  check_range("config: rotary_fraction", c.rotary_fraction, 0.0, 1.0, /*open_lo=*/true);
  PF_CHECK(c.hidden_size % c.num_attention_heads == 0, "config: hidden_size ", c.hidden_size,
           " is not divisible by num_attention_heads ", c.num_attention_heads);
  PF_CHECK(c.num_attention_heads % c.num_key_value_heads == 0, "config: num_attention_heads ",
           c.num_attention_heads, " is not divisible by num_key_value_heads ",
           c.num_key_value_heads);
  PF_CHECK(c.head_dim() % 2 == 0, "config: head dim ", c.head_dim(), " must be even for RoPE");
  return c;
}

nlohmann::json PerceiverArConfig::to_json() const {
  nlohmann::json j = source.is_object() ? source : nlohmann::json::object();
  j.update(nlohmann::json{{"model_type", "perceiver_ar"},
                          {"hidden_size", hidden_size},
                          {"intermediate_size", intermediate_size},
                          {"num_hidden_layers", num_hidden_layers},
                          {"num_attention_heads", num_attention_heads},
                          {"num_key_value_heads", num_key_value_heads},
                          {"context_length", context_length},
                          {"num_latents", num_latents},
                          {"vocab_size", vocab_size},
                          {"rms_norm_eps", rms_norm_eps},
                          {"rope_theta", rope_theta},
                          {"rotary_fraction", rotary_fraction},
                          {"tie_word_embeddings", tie_word_embeddings},
                          {"torch_dtype", "float32"}});
  return j;
}

AttentionSpec PerceiverArConfig::self_attention() const {
  AttentionSpec a;
  a.d = hidden_size;
  a.heads = num_attention_heads;
  a.kv_heads = num_key_value_heads;
  a.head_dim = head_dim();
  a.rope = cpu::RopeStyle{static_cast<float>(rope_theta), true, true, rotary_dim()};
  a.out_std = 0.02f / std::sqrt(2.0f * num_hidden_layers);
  return a;
}

CrossAttentionSpec PerceiverArConfig::cross_attention() const {
  const AttentionSpec a = self_attention();
  CrossAttentionSpec x;
  x.d = a.d, x.heads = a.heads, x.kv_heads = a.kv_heads, x.head_dim = a.head_dim;
  x.rope = a.rope;
  x.init_std = a.init_std, x.out_std = a.out_std;
  return x;
}

StackSpec perceiver_ar_stack(const nlohmann::json& j) {
  const PerceiverArConfig c = PerceiverArConfig::from_json(j);
  StackSpec s;
  s.arch = "perceiver-ar";
  s.config = c.to_json();
  s.vocab = c.vocab_size;
  s.d_model = c.hidden_size;
  s.norm_eps = c.rms_norm_eps;
  s.tied = c.tie_word_embeddings;
  s.embedding = "model.embed_tokens.weight";
  s.final_norm = "model.norm.weight";
  s.rng_stream = 5;
  s.max_context = c.context_length;
  const AttentionSpec a = c.self_attention();
  for (int64_t l = 1; l < c.num_hidden_layers; ++l)
    s.layers.push_back(llama_attention_block(l, a, c.intermediate_size));
  // Layer 0: two norms (latents, inputs), the cross-attention, the MLP (layer 1's shape).
  const int64_t d = c.hidden_size;
  s.extra_params = 2 * d + c.cross_attention().param_count() + d + 3 * d * c.intermediate_size;
  s.make_model = [c](const StackSpec& spec, uint64_t seed) -> std::unique_ptr<LanguageModel> {
    return std::make_unique<PerceiverAR>(spec, c, seed);
  };
  return s;
}

}  // namespace pf
