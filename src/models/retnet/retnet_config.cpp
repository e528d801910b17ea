#include "models/retnet/retnet_config.h"

#include "base/checks.h"
#include "base/error.h"
#include "io/config_json.h"
#include "models/limits.h"

namespace pf {

int64_t RetNetConfig::ffn() const {
  if (intermediate_size > 0) return intermediate_size;
  // fla: 2/3 * hidden * ratio, rounded up to a multiple of 256.
  const int64_t f = static_cast<int64_t>(hidden_size * hidden_ratio * 2.0 / 3.0);
  return 256 * ((f + 255) / 256);
}

std::vector<float> RetNetConfig::gammas() const {
  return parse_retention_decay(decay, num_heads, "retention_decay");
}

void retnet_layout_from_weights(nlohmann::json& j, const std::vector<std::string>& names) {
  if (!j.is_object() || j.contains("mlp_layout")) return;
  bool separate = false;
  for (const std::string& n : names)
    if (n.find(".mlp.up_proj.weight") != std::string::npos) separate = true;
  j["mlp_layout"] = separate ? "separate" : "fused";
}

RetNetConfig RetNetConfig::from_json(const nlohmann::json& j) {
  RetNetConfig c;
  c.source = j;
  c.hidden_size = json_int(j, "hidden_size");
  c.num_hidden_layers = json_int(j, "num_hidden_layers");
  c.num_heads = json_int(j, "num_heads");
  c.vocab_size = json_int(j, "vocab_size");
  c.expand_k = json_num(j, "expand_k", 1.0);
  c.expand_v = json_num(j, "expand_v", 2.0);
  c.hidden_ratio = json_num(j, "hidden_ratio", 2.0);
  c.intermediate_size = json_int(j, "intermediate_size", 0);
  c.norm_eps = json_num(j, "norm_eps", 1e-6);
  c.tie_word_embeddings = json_bool(j, "tie_word_embeddings", false);
  c.head_norm_weight = json_bool(j, "elementwise_affine", true);
  c.fused_gate_name = json_bool(j, "fuse_norm", true);
  c.rope_theta = json_num(j, "rope_theta", 10000.0);
  c.chunk = json_int(j, "retention_chunk", 64);  // 32-64 is fastest on CPU (bench)
  c.parallel_training = json_bool(j, "retention_parallel_training", false);
  // Files from flash-linear-attention have no variant key: they are the fla variant.
  PF_CHECK(!j.contains("retention_variant") || j["retention_variant"].is_string(),
           "config: retention_variant must be a string (fla or torchscale)");
  const std::string v = j.value("retention_variant", std::string("fla"));
  PF_CHECK(v == "fla" || v == "torchscale", "config: retention_variant '", v,
           "' is not one of fla, torchscale");
  c.variant = v == "fla" ? RetentionVariant::Fla : RetentionVariant::Torchscale;
  c.head_norm_eps = json_num(j, "head_norm_eps", c.norm_eps);
  const std::string layout = json_str(j, "mlp_layout", "fused");
  PF_CHECK(layout == "fused" || layout == "separate", "config: mlp_layout '", layout,
           "' is not one of fused (gate_proj holds gate and up), separate");
  c.separate_mlp = layout == "separate";
  c.prefill =
      parse_retention_prefill(json_str(j, "retention_prefill", "chunkwise"), "retention_prefill");
  if (j.contains("retention_decay")) c.decay = j["retention_decay"];
  if (c.variant == RetentionVariant::Torchscale) c.head_norm_weight = false;
  const int64_t kv = json_int(j, "num_kv_heads", c.num_heads);
  PF_CHECK(kv == c.num_heads,
           "config: num_kv_heads != num_heads (grouped retention) is not supported");
  PF_CHECK(!json_bool(j, "use_short_conv", false), "config: use_short_conv is not supported");
  PF_CHECK(json_bool(j, "use_output_gate", true), "config: use_output_gate false is not supported");
  if (j.contains("feature_map"))
    PF_CHECK(j["feature_map"].is_null(), "config: feature_map is not supported");
  if (j.contains("hidden_act"))
    PF_CHECK(j["hidden_act"] == "swish" || j["hidden_act"] == "silu", "config: hidden_act ",
             j["hidden_act"].dump(), " is not supported (swish only)");
  check_range("config: hidden_size", c.hidden_size, 1, kMaxWidth);
  check_range("config: num_hidden_layers", c.num_hidden_layers, 1, kMaxLayers);
  check_range("config: num_heads", c.num_heads, 1, c.hidden_size);
  check_range("config: vocab_size", c.vocab_size, 1, kMaxVocab);
  check_range("config: expand_k", c.expand_k, 0.0, 16.0, /*open_lo=*/true);
  check_range("config: expand_v", c.expand_v, 0.0, 16.0, /*open_lo=*/true);
  check_range("config: hidden_ratio", c.hidden_ratio, 0.0, 64.0, /*open_lo=*/true);
  check_range("config: intermediate_size", c.intermediate_size, 0, kMaxFfn);
  check_range("config: norm_eps", c.norm_eps, 0.0, 1.0, /*open_lo=*/true);
  check_range("config: head_norm_eps", c.head_norm_eps, 0.0, 1.0);  // 0: the forms agree exactly
  check_range("config: rope_theta", c.rope_theta, 0.0, 1e12, /*open_lo=*/true);
  check_range("config: retention_chunk", c.chunk, 1, 1 << 16);
  PF_CHECK(c.key_dim() > 0 && c.value_dim() > 0,
           "config: expand_k and expand_v leave no key or value dims");
  check_range("config: ffn size", c.ffn(), 1, kMaxFfn);
  PF_CHECK(c.key_dim() % c.num_heads == 0 && c.value_dim() % c.num_heads == 0,
           "config: key and value dims must be divisible by num_heads");
  PF_CHECK(c.head_k() % 2 == 0, "config: the per-head key dim must be even for RoPE");
  (void)c.gammas();  // the decays are a known scheme or one in (0, 1) per head
  return c;
}

nlohmann::json RetNetConfig::to_json() const {
  nlohmann::json j = source.is_object() ? source : nlohmann::json::object();
  j.update(
      nlohmann::json{{"model_type", "retnet"},
                     {"architectures", {"RetNetForCausalLM"}},
                     {"hidden_size", hidden_size},
                     {"num_hidden_layers", num_hidden_layers},
                     {"num_heads", num_heads},
                     {"num_kv_heads", num_heads},
                     {"vocab_size", vocab_size},
                     {"expand_k", expand_k},
                     {"expand_v", expand_v},
                     {"hidden_ratio", hidden_ratio},
                     {"intermediate_size", ffn()},
                     {"norm_eps", norm_eps},
                     {"hidden_act", "swish"},
                     {"use_output_gate", true},
                     {"use_short_conv", false},
                     {"elementwise_affine", head_norm_weight},
                     {"fuse_norm", fused_gate_name},
                     {"tie_word_embeddings", tie_word_embeddings},
                     {"retention_variant", variant == RetentionVariant::Fla ? "fla" : "torchscale"},
                     {"head_norm_eps", head_norm_eps},
                     {"rope_theta", rope_theta},
                     {"retention_chunk", chunk},
                     {"retention_parallel_training", parallel_training},
                     {"retention_prefill", retention_prefill_name(prefill)},
                     {"retention_decay", decay},
                     {"mlp_layout", separate_mlp ? "separate" : "fused"},
                     {"torch_dtype", "float32"}});
  return j;
}

}  // namespace pf
