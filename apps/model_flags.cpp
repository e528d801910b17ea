#include "apps/model_flags.h"

#include "apps/commands.h"
#include "base/checks.h"
#include "base/error.h"
#include "io/config_json.h"
#include "models/limits.h"
#include "models/lm.h"

namespace pf::cli {

void ModelFlags::add_to(CLI::App& cmd) {
  cmd.add_option("--arch", arch,
                 "Architecture: transformer | mamba | mamba2 | retnet | hybrid | perceiver-ar")
      ->capture_default_str();
  cmd.add_option("--pattern", pattern,
                 "Hybrid layers, one letter each: A attention, M Mamba-1, S Mamba-2, R retention "
                 "(e.g. MMMMAMMM); sets --layers");
  cmd.add_option("--config", config_file,
                 "Model config.json (e.g. configs/jamba-small.json) instead of the shape flags");
  cmd.add_option("--retention-decay", retention_decay,
                 "RetNet per-head decays: torchscale (1-2^(-5-h)), paper "
                 "(1-exp(linspace(log 1/32, log 1/512))), or a comma-separated list")
      ->capture_default_str();
  cmd.add_option("--retention-prefill", retention_prefill,
                 "RetNet form for prompts at inference: chunkwise | parallel | recurrent")
      ->capture_default_str();
  cmd.add_option("--d-model", d_model, "Model width")->capture_default_str();
  cmd.add_option("--layers", layers, "Number of blocks")->capture_default_str();
  cmd.add_option("--heads", heads, "Attention heads")->capture_default_str();
  cmd.add_option("--kv-heads", kv_heads, "Key/value heads (0 = same as --heads)");
  cmd.add_option("--ffn", ffn, "MLP hidden size (0 = 8/3 d_model rounded to 8)");
  cmd.add_option("--context", context,
                 "Maximum context length (Perceiver AR: the window L of inputs)")
      ->capture_default_str();
  cmd.add_option("--latents", latents,
                 "Perceiver AR: latent positions M at the end of the window (0 = min(256, "
                 "context))");
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
  check_range("--latents", latents, 0, context);
  PF_CHECK(arch == "perceiver-ar" || latents == 0, "--latents is for --arch perceiver-ar, not ",
           arch);
  PF_CHECK(arch != "hybrid" || !pattern.empty(),
           "--arch hybrid needs --pattern (e.g. --pattern MMMMAMMM)");
  PF_CHECK(arch == "hybrid" || pattern.empty(), "--pattern is for --arch hybrid, not ", arch);
}

namespace {
// "torchscale", "paper" or a comma-separated list of decays.
nlohmann::json decay_value(const std::string& s) {
  if (s == "torchscale" || s == "paper") return s;
  nlohmann::json list = nlohmann::json::array();
  size_t start = 0;
  while (start <= s.size()) {
    const size_t end = std::min(s.find(',', start), s.size());
    const std::string item = s.substr(start, end - start);
    double v = 0;
    PF_CHECK(parse_whole_double(item, &v), "--retention-decay: '", item,
             "' is not a number (give torchscale, paper, or decays like 0.97,0.99)");
    list.push_back(v);
    start = end + 1;
  }
  return list;
}
}  // namespace

nlohmann::json ModelFlags::config() const {
  if (!config_file.empty()) return read_json_file(config_file);
  validate();
  const std::string mt = model_type_for_arch(arch);
  if (mt == "postformer_hybrid") {
    nlohmann::json j = {
        {"model_type", mt},
        {"pattern", pattern},
        {"hidden_size", d_model},
        {"vocab_size", vocab},
        {"intermediate_size", ffn},  // 0: no MLP after the mixers
        {"num_attention_heads", heads},
        {"num_key_value_heads", kv_heads > 0 ? kv_heads : heads},
        {"max_position_embeddings", context},
        {"rms_norm_eps", 1e-5},
        {"tie_word_embeddings", !untied},
        {"mamba",
         {{"d_state", d_state > 0 ? d_state : 16}, {"d_conv", d_conv}, {"expand", expand}}},
        {"mamba2",
         {{"d_state", d_state > 0 ? d_state : 64},
          {"d_conv", d_conv},
          {"expand", expand},
          {"headdim", headdim},
          {"ngroups", ngroups},
          {"chunk_size", chunk > 0 ? chunk : 256}}},
        {"retention",
         {{"num_heads", heads},
          {"chunk", chunk > 0 ? chunk : 64},
          {"decay", decay_value(retention_decay)},
          {"prefill", retention_prefill},
          {"head_norm_eps", 1e-5}}}};
    return j;
  }
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
            {"retention_chunk", chunk > 0 ? chunk : 64},
            {"retention_decay", decay_value(retention_decay)},
            {"retention_prefill", retention_prefill}};
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
  if (mt == "perceiver_ar")
    return {{"model_type", mt},
            {"hidden_size", d_model},
            {"intermediate_size", f},
            {"num_hidden_layers", layers},
            {"num_attention_heads", heads},
            {"num_key_value_heads", kv_heads > 0 ? kv_heads : heads},
            {"context_length", context},
            {"num_latents", latents > 0 ? latents : std::min<int64_t>(256, context)},
            {"vocab_size", vocab},
            {"rms_norm_eps", 1e-5},
            {"tie_word_embeddings", !untied}};
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
