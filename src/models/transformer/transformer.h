// Llama-architecture decoder: RMSNorm, RoPE (rotate-half), grouped-query attention,
// SwiGLU MLP, no biases, optionally tied LM head. Hugging Face LlamaConfig keys.
#pragma once
#include <memory>

#include "models/core/decoder_lm.h"
#include "models/mixers/attention.h"

namespace pf {

struct TransformerConfig {
  int64_t vocab_size = 256;
  int64_t hidden_size = 256;
  int64_t intermediate_size = 683;
  int64_t num_hidden_layers = 4;
  int64_t num_attention_heads = 4;
  int64_t num_key_value_heads = 4;
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = true;
  nlohmann::json source;  // the config it was read from; unknown keys are written back
  int64_t head_dim() const { return hidden_size / num_attention_heads; }

  static TransformerConfig from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
};

// Layer l of a Llama stack: pre-norm attention (mixer a) and a separate SwiGLU MLP of width
// ffn, under Llama's tensor names. Perceiver AR's latent layers are these too.
BlockSpec llama_attention_block(int64_t l, const AttentionSpec& a, int64_t ffn);

// The stack a LlamaConfig describes: attention + SwiGLU MLP in every layer.
StackSpec transformer_stack(const nlohmann::json& config);

}  // namespace pf
