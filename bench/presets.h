// The model presets the benchmarks share (names as in the README's tables).
#pragma once
#include <algorithm>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/rng.h"

namespace pf::bench {

using nlohmann::json;

// window, latents: Perceiver AR's L and M (its presets only).
inline json preset(const std::string& name, int64_t window, int64_t latents) {
  auto llama = [](int64_t d, int64_t f, int64_t l, int64_t h, int64_t v, bool tied) {
    return json{{"model_type", "llama"},
                {"hidden_size", d},
                {"intermediate_size", f},
                {"num_hidden_layers", l},
                {"num_attention_heads", h},
                {"num_key_value_heads", h},
                {"vocab_size", v},
                {"max_position_embeddings", 16384},
                {"tie_word_embeddings", tied}};
  };
  auto mamba = [](int version, int64_t d, int64_t l, int64_t v) {
    json j = {{"model_type", version == 2 ? "mamba2" : "mamba"},
              {"hidden_size", d},
              {"num_hidden_layers", l},
              {"vocab_size", v},
              {"state_size", version == 2 ? 128 : 16},
              {"tie_word_embeddings", true}};
    if (version == 2) j.update(json{{"head_dim", 64}, {"n_groups", 1}, {"chunk_size", 256}});
    return j;
  };
  if (name == "transformer-small") return llama(384, 1024, 6, 6, 256, true);  // 10.7M
  if (name == "llama125m") return llama(768, 2048, 12, 12, 32000, false);     // 134M
  if (name == "mamba-small") return mamba(1, 384, 11, 256);                   // ~10M
  if (name == "mamba2-small") return mamba(2, 384, 10, 256);                  // ~10M
  if (name == "retnet-small")  // ~10M: value dim 2d, GLU FFN 768
    return json{{"model_type", "retnet"},      {"hidden_size", 384},
                {"num_hidden_layers", 5},      {"num_heads", 6},
                {"vocab_size", 256},           {"intermediate_size", 768},
                {"tie_word_embeddings", true}, {"retention_variant", "torchscale"},
                {"retention_chunk", 64}};
  auto hybrid = [](const std::string& pattern, int64_t d) {
    return json{{"model_type", "postformer_hybrid"},
                {"pattern", pattern},
                {"hidden_size", d},
                {"vocab_size", 256},
                {"num_attention_heads", 6},
                {"max_position_embeddings", 16384},
                {"mamba", {{"d_state", 16}}}};
  };
  if (name == "jamba-small") return hybrid("MMMMAMMMMMM", 384);  // ~10M: 1 attention in 11
  if (name == "perceiver-ar-small") {  // transformer-small's shape: 1 cross + 5 self layers
    json j = llama(384, 1024, 6, 6, 256, true);
    j.erase("max_position_embeddings");
    j.update(json{{"model_type", "perceiver_ar"},
                  {"context_length", window},
                  {"num_latents", std::min(latents, window)}});
    return j;
  }
  if (name == "mamba-130m") return mamba(1, 768, 24, 50280);
  if (name == "mamba2-130m") return mamba(2, 768, 24, 50288);
  throw std::runtime_error(
      "unknown preset '" + name +
      "' (transformer-small, llama125m, mamba-small, mamba2-small, "
      "retnet-small, jamba-small, perceiver-ar-small, mamba-130m, mamba2-130m)");
}

inline std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, uint64_t seed) {
  pf::Rng rng(seed);
  std::vector<int32_t> t(n);
  for (auto& v : t) v = static_cast<int32_t>(rng.below(vocab));
  return t;
}

}  // namespace pf::bench
