// state-spaces MambaLMHeadModel configs with attention layers (attn_layer_idx, attn_cfg:
// mamba_ssm's MHA) and/or GatedMLPs (d_intermediate), as mamba2attn-2.7b uses.
#include <set>

#include "base/checks.h"
#include "base/error.h"
#include "io/config_json.h"
#include "models/hybrid/hybrid.h"
#include "models/limits.h"
#include "models/mamba/mamba.h"
#include "models/mamba/mamba_config.h"
#include "models/mixers/mamba.h"
#include "models/mixers/mha.h"

namespace pf {

bool is_state_spaces_hybrid(const nlohmann::json& j) {
  if (!is_state_spaces_mamba(j, nullptr)) return false;
  const bool attn = j.contains("attn_layer_idx") && j["attn_layer_idx"].is_array() &&
                    !j["attn_layer_idx"].empty();
  const bool mlp =
      j.contains("d_intermediate") && j["d_intermediate"].is_number() && j["d_intermediate"] != 0;
  return attn || mlp;
}

StackSpec state_spaces_hybrid_stack(const nlohmann::json& j) {
  int version = 1;
  is_state_spaces_mamba(j, &version);
  // The Mamba layers' settings, read by the Mamba config without the hybrid keys.
  nlohmann::json plain = j;
  plain.erase("attn_layer_idx");
  plain.erase("attn_cfg");
  plain.erase("d_intermediate");
  const MambaConfig c = MambaConfig::from_json(plain, version);
  const int64_t d = c.d_model, L = c.n_layer;

  std::set<int64_t> attn_layers;
  if (j.contains("attn_layer_idx")) {
    PF_CHECK(j["attn_layer_idx"].is_array(), "config: attn_layer_idx must be a list");
    for (const auto& v : j["attn_layer_idx"]) {
      PF_CHECK(v.is_number_integer(), "config: attn_layer_idx entries must be integers");
      const int64_t i = v.get<int64_t>();
      check_range("config: attn_layer_idx entry", i, 0, L - 1);
      PF_CHECK(attn_layers.insert(i).second, "config: attn_layer_idx lists layer ", i, " twice");
    }
  }
  const nlohmann::json ac = j.contains("attn_cfg") && j["attn_cfg"].is_object()
                                ? j["attn_cfg"]
                                : nlohmann::json::object();
  MhaSpec m;
  m.d = d;
  m.n_layer = L;
  if (!attn_layers.empty()) {
    m.heads = json_int(ac, "num_heads");
    check_range("config: attn_cfg.num_heads", m.heads, 1, d);
    m.kv_heads = ac.contains("num_heads_kv") && !ac["num_heads_kv"].is_null()
                     ? json_int(ac, "num_heads_kv")
                     : m.heads;
    check_range("config: attn_cfg.num_heads_kv", m.kv_heads, 1, m.heads);
    PF_CHECK(m.heads % m.kv_heads == 0, "config: attn_cfg.num_heads ", m.heads,
             " is not a multiple of num_heads_kv ", m.kv_heads);
    m.head_dim = ac.contains("head_dim") && !ac["head_dim"].is_null() ? json_int(ac, "head_dim")
                                                                      : d / m.heads;
    check_range("config: attn_cfg.head_dim", m.head_dim, 1, kMaxWidth);
    m.d_conv = json_int(ac, "d_conv", 0);
    check_range("config: attn_cfg.d_conv", m.d_conv, 0, 1 << 10);
    m.rotary_dim = json_int(ac, "rotary_emb_dim", 0);
    check_range("config: attn_cfg.rotary_emb_dim", m.rotary_dim, 0, m.head_dim);
    PF_CHECK(m.rotary_dim % 2 == 0, "config: attn_cfg.rotary_emb_dim must be even");
    m.rotary_base = json_num(ac, "rotary_emb_base", 10000.0);
    check_range("config: attn_cfg.rotary_emb_base", m.rotary_base, 0.0, 1e12, /*open_lo=*/true);
    m.rotary_interleaved = json_bool(ac, "rotary_emb_interleaved", false);
    // mamba_ssm's defaults for these are the opposite of what its language models use, so
    // a config that leaves them out asks for something not implemented here.
    PF_CHECK(json_bool(ac, "causal", false), "config: attn_cfg.causal must be true");
    PF_CHECK(!json_bool(ac, "qkv_proj_bias", true),
             "config: attn_cfg.qkv_proj_bias (default true) is not supported; set it false");
    PF_CHECK(!json_bool(ac, "out_proj_bias", true),
             "config: attn_cfg.out_proj_bias (default true) is not supported; set it false");
    PF_CHECK(json_int(ac, "mlp_dim", 0) == 0, "config: attn_cfg.mlp_dim > 0 is not supported");
    PF_CHECK(!ac.contains("softmax_scale") || ac["softmax_scale"].is_null(),
             "config: attn_cfg.softmax_scale other than 1/sqrt(head_dim) is not supported");
  }
  const int64_t d_int = json_int(j, "d_intermediate", 0);
  check_range("config: d_intermediate", d_int, 0, kMaxFfn);
  const int64_t ffn = (d_int + 127) / 128 * 128;  // GatedMLP rounds to multiple_of 128

  StackSpec s;
  s.arch = "hybrid";
  s.vocab = c.padded_vocab();
  s.d_model = d;
  s.norm_eps = c.norm_eps;
  s.tied = c.tie_embeddings;
  s.embedding = c.embedding_name();
  s.final_norm = "backbone.norm_f.weight";
  s.rng_stream = 2;
  const Mamba1Spec m1 = mamba1_spec(c);
  const Mamba2Spec m2 = mamba2_spec(c);
  for (int64_t l = 0; l < L; ++l) {
    BlockSpec b;
    b.prefix = "backbone.layers." + std::to_string(l) + ".";
    b.norm = "norm.weight";
    b.mixer_name = "mixer.";
    if (attn_layers.count(l)) {
      set_mixer(b, 'A', m, make_mha);
    } else if (version == 2) {
      set_mixer(b, 'S', m2, make_mamba2_mixer);
    } else {
      set_mixer(b, 'M', m1, make_mamba1_mixer);
    }
    if (ffn > 0) {
      b.mlp.layout = MlpLayout::FusedUpGate;
      b.mlp.ffn = ffn;
      b.mlp.norm = "norm2.weight";
      b.mlp.gate = "mlp.fc1.weight";
      b.mlp.down = "mlp.fc2.weight";
    }
    s.layers.push_back(std::move(b));
  }
  nlohmann::json out = c.to_json();
  if (j.contains("attn_layer_idx")) out["attn_layer_idx"] = j["attn_layer_idx"];
  if (j.contains("attn_cfg")) out["attn_cfg"] = j["attn_cfg"];
  out["d_intermediate"] = d_int;
  s.config = out;
  return s;
}

}  // namespace pf
