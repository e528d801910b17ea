// Flags that describe a fresh model's shape, shared by `train` and `info`.
#pragma once
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

namespace pf::cli {

struct ModelFlags {
  std::string arch = "transformer";
  int64_t d_model = 256, layers = 4, heads = 4, kv_heads = 0, ffn = 0, context = 1024;
  int64_t vocab = 256;
  int64_t latents = 0;  // Perceiver AR: latent positions (0 = min(256, context))
  bool untied = false;
  int64_t d_state = 0, d_conv = 4, expand = 2, headdim = 64, ngroups = 1;  // Mamba
  int64_t chunk = 0;    // Mamba-2 SSD / RetNet chunk; 0 = the architecture default
  std::string pattern;  // hybrid: one letter per layer
  std::string retention_decay = "torchscale", retention_prefill = "chunkwise";
  std::string config_file;  // a config.json instead of the shape flags

  void add_to(CLI::App& cmd);
  void validate() const;  // every flag in range; errors name the flag
  // A config.json for the chosen architecture (Hugging Face keys).
  nlohmann::json config() const;
};

}  // namespace pf::cli
