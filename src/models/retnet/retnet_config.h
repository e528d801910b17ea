// RetNet configuration in flash-linear-attention's RetNetConfig keys (model_type
// "retnet"), plus our own keys for the torchscale variant we train by default.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/mixers/retention.h"

namespace pf {

// torchscale: k scaled by dk^-0.5, rotate-every-two RoPE with linspace frequencies, the
// torchscale normalisations, a weightless head RMSNorm. fla: q scaled by dk^-0.5,
// rotate-half RoPE, un-normalised retention, head RMSNorm with a learned weight.
struct RetNetConfig {
  RetentionVariant variant = RetentionVariant::Torchscale;
  int64_t hidden_size = 256, num_hidden_layers = 4, num_heads = 4, vocab_size = 256;
  double expand_k = 1.0, expand_v = 2.0;
  int64_t intermediate_size = 0;  // 0 = fla's rule from hidden_ratio
  double hidden_ratio = 2.0;
  double norm_eps = 1e-6;       // block RMSNorms
  double head_norm_eps = 1e-6;  // the per-head norm (0 makes all retention forms agree)
  double rope_theta = 10000.0;
  bool tie_word_embeddings = true;
  bool head_norm_weight = true;    // fla's elementwise_affine
  bool fused_gate_name = true;     // fla's fuse_norm: g_norm_swish_gate vs g_norm
  int64_t chunk = 64;              // chunkwise form chunk length (32-64 fastest on CPU)
  bool parallel_training = false;  // train with the parallel form instead of chunkwise
  RetentionPrefill prefill = RetentionPrefill::Chunkwise;  // form for prompts at inference
  nlohmann::json decay = "torchscale";  // "torchscale", "paper" or a list of per-head decays
  bool separate_mlp = false;            // fla since February 2025: gate_proj and up_proj
  nlohmann::json source;                // the config it was read from; unknown keys are kept

  int64_t key_dim() const { return static_cast<int64_t>(hidden_size * expand_k); }
  int64_t value_dim() const { return static_cast<int64_t>(hidden_size * expand_v); }
  int64_t head_k() const { return key_dim() / num_heads; }
  int64_t head_v() const { return value_dim() / num_heads; }
  int64_t ffn() const;

  std::vector<float> gammas() const;  // (num_heads)

  static RetNetConfig from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
};

// Fills in "mlp_layout" of a flash-linear-attention config from its weights when the
// config does not say: "separate" when they hold mlp.up_proj, else "fused".
void retnet_layout_from_weights(nlohmann::json& config, const std::vector<std::string>& names);

}  // namespace pf
