#include <cmath>

#include "autograd/ops.h"
#include "base/checks.h"
#include "base/error.h"
#include "io/config_json.h"
#include "models/limits.h"
#include "models/transformer/transformer_model.h"

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

int64_t TransformerConfig::param_count() const {
  const int64_t D = hidden_size, F = intermediate_size, hd = head_dim();
  const int64_t per_layer =
      2 * D + 2 * D * num_attention_heads * hd + 2 * D * num_key_value_heads * hd + 3 * D * F;
  const int64_t embed = vocab_size * D * (tie_word_embeddings ? 1 : 2);
  return checked_add(checked_mul(per_layer, num_hidden_layers, "config: model size"), embed + D,
                     "config: model size");
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

TransformerModel::TransformerModel(const TransformerConfig& cfg, uint64_t seed) : cfg_(cfg) {
  Rng rng(seed, 1);
  const int64_t D = cfg.hidden_size, F = cfg.intermediate_size, hd = cfg.head_dim();
  const int64_t H = cfg.num_attention_heads, KV = cfg.num_key_value_heads;
  const float std = 0.02f;
  // Residual output projections are scaled down so the stream's variance stays O(1).
  const float out_std = std / std::sqrt(2.0f * cfg.num_hidden_layers);
  embed_ = normal_param({cfg.vocab_size, D}, std, rng);
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
    TransformerLayer L;
    L.attn_norm = constant_param({D}, 1.0f);
    L.wq = normal_param({H * hd, D}, std, rng);
    L.wk = normal_param({KV * hd, D}, std, rng);
    L.wv = normal_param({KV * hd, D}, std, rng);
    L.wo = normal_param({D, H * hd}, out_std, rng);
    L.mlp_norm = constant_param({D}, 1.0f);
    L.w_gate = normal_param({F, D}, std, rng);
    L.w_up = normal_param({F, D}, std, rng);
    L.w_down = normal_param({D, F}, out_std, rng);
    layers_.push_back(std::move(L));
  }
  norm_ = constant_param({D}, 1.0f);
  if (!cfg.tie_word_embeddings) lm_head_ = normal_param({cfg.vocab_size, D}, std, rng);
}

void TransformerModel::visit_params(const ParamVisitor& visit) {
  visit("model.embed_tokens.weight", embed_, ParamKind::Embedding);
  for (size_t l = 0; l < layers_.size(); ++l) {
    auto& L = layers_[l];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    visit(p + "input_layernorm.weight", L.attn_norm, ParamKind::Norm);
    visit(p + "self_attn.q_proj.weight", L.wq, ParamKind::Matrix);
    visit(p + "self_attn.k_proj.weight", L.wk, ParamKind::Matrix);
    visit(p + "self_attn.v_proj.weight", L.wv, ParamKind::Matrix);
    visit(p + "self_attn.o_proj.weight", L.wo, ParamKind::Matrix);
    visit(p + "post_attention_layernorm.weight", L.mlp_norm, ParamKind::Norm);
    visit(p + "mlp.gate_proj.weight", L.w_gate, ParamKind::Matrix);
    visit(p + "mlp.up_proj.weight", L.w_up, ParamKind::Matrix);
    visit(p + "mlp.down_proj.weight", L.w_down, ParamKind::Matrix);
  }
  visit("model.norm.weight", norm_, ParamKind::Norm);
  if (!cfg_.tie_word_embeddings) visit("lm_head.weight", lm_head_, ParamKind::Matrix);
}

Var TransformerModel::forward(const std::vector<int32_t>& tokens, int64_t B, int64_t T,
                              const ForwardOptions& opt) {
  PF_CHECK(T <= cfg_.max_position_embeddings, "sequence length ", T,
           " exceeds max_position_embeddings ", cfg_.max_position_embeddings);
  const int64_t D = cfg_.hidden_size, hd = cfg_.head_dim();
  const int64_t H = cfg_.num_attention_heads, KV = cfg_.num_key_value_heads;
  const float eps = static_cast<float>(cfg_.rms_norm_eps);
  const float theta = static_cast<float>(cfg_.rope_theta);
  Var x = embedding(embed_, tokens, B, T);  // (B, T, D)
  for (size_t l = 0; l < layers_.size(); ++l) {
    const uint64_t seed = opt.dropout_seed + 2 * l;
    // By value: the backward may re-run this after forward() has returned.
    const float p = opt.dropout;
    auto block = [this, l, seed, B, T, H, KV, hd, eps, theta, p](const Var& xin) {
      auto& L = layers_[l];
      Var h = rmsnorm(xin, L.attn_norm, eps);                            // (B, T, D)
      Var q = rope(reshape(linear(h, L.wq), {B, T, H, hd}), 0, theta);   // (B, T, H, hd)
      Var k = rope(reshape(linear(h, L.wk), {B, T, KV, hd}), 0, theta);  // (B, T, KV, hd)
      Var v = reshape(linear(h, L.wv), {B, T, KV, hd});                  // (B, T, KV, hd)
      Var a = reshape(attention(q, k, v), {B, T, H * hd});               // (B, T, H*hd)
      Var x1 = add(xin, dropout(linear(a, L.wo), p, seed + 1));          // (B, T, D)
      h = rmsnorm(x1, L.mlp_norm, eps);
      Var m = swiglu(linear(h, L.w_gate), linear(h, L.w_up));  // (B, T, F)
      return add(x1, dropout(linear(m, L.w_down), p, seed + 2));
    };
    x = opt.recompute ? checkpoint(block, x) : block(x);
  }
  x = rmsnorm(x, norm_, eps);
  return reshape(linear(x, head()), {B * T, cfg_.vocab_size});  // (B*T, V)
}

int64_t TransformerModel::state_bytes(int64_t context) const {
  return 2 * cfg_.num_hidden_layers * context * cfg_.num_key_value_heads * cfg_.head_dim() *
         static_cast<int64_t>(sizeof(float));
}

double TransformerModel::flops_per_token(int64_t context) const {
  const double D = cfg_.hidden_size, F = cfg_.intermediate_size, L = cfg_.num_hidden_layers;
  const double hd = cfg_.head_dim(), H = cfg_.num_attention_heads, KV = cfg_.num_key_value_heads;
  const double matmul_params =
      L * (D * H * hd * 2 + 2 * D * KV * hd + 3 * D * F) + D * cfg_.vocab_size;
  // Causal attention: on average a token attends to context/2 keys; QK^T and PV.
  const double attn = L * 2.0 * 2.0 * H * hd * (context / 2.0);
  return 2.0 * matmul_params + attn;
}

std::unique_ptr<LanguageModel> make_transformer(const nlohmann::json& config, uint64_t seed) {
  return std::make_unique<TransformerModel>(TransformerConfig::from_json(config), seed);
}

}  // namespace pf
