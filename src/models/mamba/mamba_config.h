// Mamba-1 and Mamba-2 configuration, read from and written back to either published
// layout: state-spaces (config keys d_model, n_layer, ssm_cfg, ...; tensor prefix
// backbone.embedding) or Hugging Face transformers (MambaConfig / Mamba2Config keys;
// backbone.embeddings).
#pragma once
#include <nlohmann/json.hpp>

namespace pf {

enum class MambaLayout { StateSpaces, Transformers };

struct MambaConfig {
  int version = 1;  // 1 = Mamba (selective scan), 2 = Mamba-2 (SSD)
  MambaLayout layout = MambaLayout::Transformers;
  int64_t d_model = 256, n_layer = 4;
  int64_t vocab_size = 256;  // as the config states it (tokenizer vocabulary)
  int64_t pad_multiple = 8;  // embedding rows are vocab_size rounded up to this
  int64_t d_state = 16, d_conv = 4, expand = 2;
  int64_t dt_rank = 0;                                  // Mamba-1; 0 = ceil(d_model / 16)
  int64_t headdim = 64, ngroups = 1, chunk_size = 256;  // Mamba-2
  double norm_eps = 1e-5;
  bool tie_embeddings = true;
  nlohmann::json source;  // the config it was read from; unknown keys are written back

  int64_t d_inner() const { return expand * d_model; }
  int64_t rank() const { return dt_rank > 0 ? dt_rank : (d_model + 15) / 16; }
  int64_t nheads() const { return d_inner() / headdim; }
  int64_t padded_vocab() const {
    return (vocab_size + pad_multiple - 1) / pad_multiple * pad_multiple;
  }
  // The tensor-name prefix of the embedding in this layout.
  const char* embedding_name() const {
    return layout == MambaLayout::StateSpaces ? "backbone.embedding.weight"
                                              : "backbone.embeddings.weight";
  }

  static MambaConfig from_json(const nlohmann::json& j, int version);
  nlohmann::json to_json() const;
};

// True when a config without "model_type" is a state-spaces Mamba (version 1 or 2);
// sets *version.
bool is_state_spaces_mamba(const nlohmann::json& j, int* version);

}  // namespace pf
