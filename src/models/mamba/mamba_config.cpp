#include "models/mamba/mamba_config.h"

#include "base/checks.h"
#include "base/error.h"
#include "io/config_json.h"
#include "models/limits.h"

namespace pf {

bool is_state_spaces_mamba(const nlohmann::json& j, int* version) {
  if (!j.is_object() || j.contains("model_type") || !j.contains("d_model") ||
      !j.contains("n_layer"))
    return false;
  int v = 1;
  if (j.contains("ssm_cfg") && j["ssm_cfg"].is_object() && j["ssm_cfg"].contains("layer"))
    v = j["ssm_cfg"]["layer"] == "Mamba2" ? 2 : 1;
  if (version) *version = v;
  return true;
}

namespace {
// dt rank: "auto" (or absent) = ceil(d_model / 16), else a positive integer.
int64_t rank_key(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null() || j[key] == "auto") return 0;
  const int64_t r = json_int(j, key);
  PF_CHECK(r >= 1, "config: ", key, " ", r, " must be positive or \"auto\"");
  return r;
}

void check_positive(const MambaConfig& c) {
  check_range("config: d_model (hidden_size)", c.d_model, 1, kMaxWidth);
  check_range("config: n_layer (num_hidden_layers)", c.n_layer, 1, kMaxLayers);
  check_range("config: vocab_size", c.vocab_size, 1, kMaxVocab);
  check_range("config: pad_vocab_size_multiple", c.pad_multiple, 1, 1 << 16);
  check_range("config: d_state (state_size)", c.d_state, 1, 1 << 12);
  check_range("config: d_conv (conv_kernel)", c.d_conv, 1, 1 << 10);
  check_range("config: expand", c.expand, 1, 64);
  check_range("config: dt_rank (time_step_rank)", c.dt_rank, 0, kMaxWidth);
  check_range("config: layer_norm_epsilon", c.norm_eps, 0.0, 1.0, /*open_lo=*/true);
  if (c.version == 2) {
    check_range("config: headdim (head_dim)", c.headdim, 1, c.d_inner());
    check_range("config: ngroups (n_groups)", c.ngroups, 1, c.d_inner());
    check_range("config: chunk_size", c.chunk_size, 1, 1 << 16);
    PF_CHECK(c.d_inner() % c.headdim == 0, "config: d_inner ", c.d_inner(),
             " is not a multiple of headdim ", c.headdim);
    PF_CHECK(c.ngroups > 0 && c.nheads() % c.ngroups == 0, "config: ", c.nheads(),
             " heads are not divisible into ", c.ngroups, " groups");
    PF_CHECK(c.chunk_size > 0, "config: chunk_size must be positive");
  }
}
}  // namespace

MambaConfig MambaConfig::from_json(const nlohmann::json& j, int version) {
  MambaConfig c;
  int64_t d_ssm = -1;  // state-spaces Mamba-2: must equal d_inner when given
  c.version = version;
  c.source = j;
  if (!j.contains("model_type")) {
    // state-spaces layout: d_model, n_layer, vocab_size, ssm_cfg{...}
    c.layout = MambaLayout::StateSpaces;
    c.d_model = json_int(j, "d_model");
    c.n_layer = json_int(j, "n_layer");
    c.vocab_size = json_int(j, "vocab_size");
    c.pad_multiple = json_int(j, "pad_vocab_size_multiple", 8);
    c.tie_embeddings = json_bool(j, "tie_embeddings", true);
    PF_CHECK(json_bool(j, "rms_norm", true), "config: rms_norm false (LayerNorm) is not supported");
    PF_CHECK(json_int(j, "d_intermediate", 0) == 0,
             "config: d_intermediate > 0 (MLP blocks) is not supported");
    if (j.contains("attn_layer_idx") && j["attn_layer_idx"].is_array())
      PF_CHECK(j["attn_layer_idx"].empty(),
               "config: attention layers (attn_layer_idx) are not supported in a Mamba model");
    const nlohmann::json ssm =
        j.contains("ssm_cfg") && j["ssm_cfg"].is_object() ? j["ssm_cfg"] : nlohmann::json::object();
    c.d_state = json_int(ssm, "d_state", version == 2 ? 128 : 16);
    c.d_conv = json_int(ssm, "d_conv", 4);
    c.expand = json_int(ssm, "expand", 2);
    c.dt_rank = rank_key(ssm, "dt_rank");
    c.headdim = json_int(ssm, "headdim", 64);
    c.ngroups = json_int(ssm, "ngroups", 1);
    c.chunk_size = json_int(ssm, "chunk_size", 256);
    PF_CHECK(json_bool(ssm, "bias", false) == false, "config: projection biases are not supported");
    PF_CHECK(json_bool(ssm, "conv_bias", true), "config: conv_bias false is not supported");
    if (version == 2 && ssm.contains("d_ssm") && !ssm["d_ssm"].is_null())
      d_ssm = json_int(ssm, "d_ssm");
  } else {
    // transformers layout (MambaConfig / Mamba2Config)
    c.layout = MambaLayout::Transformers;
    c.d_model = json_int(j, "hidden_size");
    c.n_layer = json_int(j, "num_hidden_layers");
    c.vocab_size = json_int(j, "vocab_size");
    c.pad_multiple = 1;  // transformers stores vocab_size embedding rows, already padded
    c.d_state = json_int(j, "state_size", version == 2 ? 128 : 16);
    c.d_conv = json_int(j, "conv_kernel", 4);
    c.expand = json_int(j, "expand", 2);
    c.norm_eps = json_num(j, "layer_norm_epsilon", 1e-5);
    c.tie_embeddings = json_bool(j, "tie_word_embeddings", true);
    c.dt_rank = rank_key(j, "time_step_rank");
    c.headdim = json_int(j, "head_dim", 64);
    c.ngroups = json_int(j, "n_groups", 1);
    c.chunk_size = json_int(j, "chunk_size", 256);
    PF_CHECK(!json_bool(j, "use_bias", false), "config: use_bias true is not supported");
    PF_CHECK(json_bool(j, "use_conv_bias", true), "config: use_conv_bias false is not supported");
  }
  check_positive(c);
  // After the range checks, so the products and quotients below are defined.
  PF_CHECK(d_ssm < 0 || d_ssm == c.d_inner(), "config: d_ssm other than d_inner is not supported");
  if (c.layout == MambaLayout::Transformers && j.contains("intermediate_size") &&
      !j["intermediate_size"].is_null())
    PF_CHECK(json_int(j, "intermediate_size") == c.d_inner(), "config: intermediate_size ",
             j["intermediate_size"].dump(), " is not expand * hidden_size = ", c.d_inner());
  if (c.layout == MambaLayout::Transformers && version == 2 && j.contains("num_heads") &&
      !j["num_heads"].is_null())
    PF_CHECK(json_int(j, "num_heads") == c.d_inner() / c.headdim, "config: num_heads ",
             j["num_heads"].dump(),
             " does not equal d_inner / head_dim = ", c.d_inner() / c.headdim);
  return c;
}

nlohmann::json MambaConfig::to_json() const {
  nlohmann::json j = source.is_object() ? source : nlohmann::json::object();
  if (layout == MambaLayout::StateSpaces) {
    nlohmann::json ssm =
        j.contains("ssm_cfg") && j["ssm_cfg"].is_object() ? j["ssm_cfg"] : nlohmann::json::object();
    ssm.update(nlohmann::json{{"d_state", d_state}, {"d_conv", d_conv}, {"expand", expand}});
    if (version == 2)
      ssm.update(nlohmann::json{{"layer", "Mamba2"},
                                {"headdim", headdim},
                                {"ngroups", ngroups},
                                {"chunk_size", chunk_size}});
    else if (dt_rank > 0)
      ssm["dt_rank"] = dt_rank;
    j.update(nlohmann::json{{"d_model", d_model},
                            {"n_layer", n_layer},
                            {"vocab_size", vocab_size},
                            {"ssm_cfg", ssm},
                            {"rms_norm", true},
                            {"residual_in_fp32", true},
                            {"pad_vocab_size_multiple", pad_multiple},
                            {"tie_embeddings", tie_embeddings}});
    return j;
  }
  j.update(
      nlohmann::json{{"model_type", version == 2 ? "mamba2" : "mamba"},
                     {"architectures", {version == 2 ? "Mamba2ForCausalLM" : "MambaForCausalLM"}},
                     {"hidden_size", d_model},
                     {"num_hidden_layers", n_layer},
                     {"vocab_size", vocab_size},
                     {"state_size", d_state},
                     {"conv_kernel", d_conv},
                     {"expand", expand},
                     {"layer_norm_epsilon", norm_eps},
                     {"tie_word_embeddings", tie_embeddings},
                     {"use_bias", false},
                     {"use_conv_bias", true},
                     {"residual_in_fp32", true},
                     {"torch_dtype", "float32"}});
  if (version == 1) {
    j["intermediate_size"] = d_inner();
    j["time_step_rank"] = rank();
  } else {
    j.update(nlohmann::json{{"head_dim", headdim},
                            {"num_heads", nheads()},
                            {"n_groups", ngroups},
                            {"chunk_size", chunk_size}});
  }
  return j;
}

}  // namespace pf
