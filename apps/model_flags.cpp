#include "apps/model_flags.h"

#include "base/checks.h"
#include "base/error.h"
#include "models/limits.h"
#include "models/lm.h"

namespace pf::cli {

void ModelFlags::add_to(CLI::App& cmd) {
  cmd.add_option("--arch", arch, "Architecture: transformer | mamba | mamba2 | retnet")
      ->capture_default_str();
  cmd.add_option("--d-model", d_model, "Model width")->capture_default_str();
  cmd.add_option("--layers", layers, "Number of blocks")->capture_default_str();
  cmd.add_option("--heads", heads, "Attention heads")->capture_default_str();
  cmd.add_option("--kv-heads", kv_heads, "Key/value heads (0 = same as --heads)");
  cmd.add_option("--ffn", ffn, "MLP hidden size (0 = 8/3 d_model rounded to 8)");
  cmd.add_option("--context", context, "Maximum context length")->capture_default_str();
  cmd.add_option("--vocab", vocab, "Vocabulary size (byte tokenizer: 256)")->capture_default_str();
  cmd.add_flag("--untied", untied, "Separate LM head instead of tying it to the embedding");
  cmd.add_option("--d-state", d_state, "Mamba state size (0 = 16 for mamba, 128 for mamba2)");
  cmd.add_option("--d-conv", d_conv, "Mamba causal conv width")->capture_default_str();
  cmd.add_option("--expand", expand, "Mamba inner width = expand * d_model")->capture_default_str();
  cmd.add_option("--headdim", headdim, "Mamba-2 head dim")->capture_default_str();
  cmd.add_option("--ngroups", ngroups, "Mamba-2 B/C groups")->capture_default_str();
  cmd.add_option("--chunk", chunk,
                 "Chunk length of Mamba-2's SSD (default 256) or RetNet's chunkwise form (64)");
}

void ModelFlags::validate() const {
  check_range("--d-model", d_model, 1, kMaxWidth);
  check_range("--layers", layers, 1, kMaxLayers);
  check_range("--heads", heads, 1, d_model);
  check_range("--kv-heads", kv_heads, 0, heads);
  check_range("--ffn", ffn, 0, kMaxFfn);
  check_range("--context", context, 1, kMaxPositions);
  check_range("--vocab", vocab, 1, kMaxVocab);
  check_range("--d-state", d_state, 0, 1 << 12);
  check_range("--d-conv", d_conv, 1, 1 << 10);
  check_range("--expand", expand, 1, 64);
  if (arch == "mamba2") {
    check_range("--headdim", headdim, 1, expand * d_model);
    check_range("--ngroups", ngroups, 1, expand * d_model);
  }
  check_range("--chunk", chunk, 0, 1 << 16);
}

nlohmann::json ModelFlags::config() const {
  validate();
  const std::string mt = model_type_for_arch(arch);
  if (mt == "retnet") {
    // Our default is the torchscale variant: value dim 2d, GLU FFN (--ffn), weightless head norm.
    return {{"model_type", mt},
            {"hidden_size", d_model},
            {"num_hidden_layers", layers},
            {"num_heads", heads},
            {"vocab_size", vocab},
            {"expand_k", 1.0},
            {"expand_v", 2.0},
            {"intermediate_size", ffn > 0 ? ffn : ((d_model * 8 / 3 + 7) / 8) * 8},
            {"norm_eps", 1e-5},
            {"head_norm_eps", 1e-5},
            {"tie_word_embeddings", !untied},
            {"retention_variant", "torchscale"},
            {"retention_chunk", chunk > 0 ? chunk : 64}};
  }
  if (mt == "mamba" || mt == "mamba2") {
    nlohmann::json j = {{"model_type", mt},
                        {"hidden_size", d_model},
                        {"num_hidden_layers", layers},
                        {"vocab_size", vocab},
                        {"state_size", d_state > 0 ? d_state : (mt == "mamba" ? 16 : 128)},
                        {"conv_kernel", d_conv},
                        {"expand", expand},
                        {"tie_word_embeddings", !untied},
                        {"layer_norm_epsilon", 1e-5}};
    if (mt == "mamba2") {
      j["head_dim"] = headdim;
      j["n_groups"] = ngroups;
      j["chunk_size"] = chunk > 0 ? chunk : 256;
    }
    return j;
  }
  int64_t f = ffn > 0 ? ffn : ((d_model * 8 / 3 + 7) / 8) * 8;
  return {{"model_type", mt},
          {"hidden_size", d_model},
          {"intermediate_size", f},
          {"num_hidden_layers", layers},
          {"num_attention_heads", heads},
          {"num_key_value_heads", kv_heads > 0 ? kv_heads : heads},
          {"max_position_embeddings", context},
          {"vocab_size", vocab},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", 10000.0},
          {"tie_word_embeddings", !untied}};
}

}  // namespace pf::cli
