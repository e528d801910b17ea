// Internal: the Transformer's parameters and forward, shared by training and the
// KV-cache session.
#pragma once
#include <vector>

#include "models/transformer/transformer.h"

namespace pf {

struct TransformerLayer {
  Var attn_norm;       // (D)
  Var wq, wk, wv, wo;  // (H*hd, D), (KV*hd, D), (KV*hd, D), (D, H*hd)
  Var mlp_norm;        // (D)
  Var w_gate, w_up;    // (F, D)
  Var w_down;          // (D, F)
};

class TransformerModel : public LanguageModel {
 public:
  TransformerModel(const TransformerConfig& cfg, uint64_t seed);
  std::string arch() const override { return "transformer"; }
  int64_t vocab_size() const override { return cfg_.vocab_size; }
  int64_t max_context() const override { return cfg_.max_position_embeddings; }
  void visit_params(const ParamVisitor& visit) override;
  Var forward(const std::vector<int32_t>& tokens, int64_t B, int64_t T,
              const ForwardOptions& opt) override;
  std::unique_ptr<InferenceSession> new_session(int64_t max_tokens) override;
  nlohmann::json config_json() const override { return cfg_.to_json(); }
  int64_t state_bytes(int64_t context) const override;
  double flops_per_token(int64_t context) const override;

  const TransformerConfig& config() const { return cfg_; }
  const Var& head() const { return cfg_.tie_word_embeddings ? embed_ : lm_head_; }

  TransformerConfig cfg_;
  Var embed_;  // (V, D)
  std::vector<TransformerLayer> layers_;
  Var norm_;     // (D)
  Var lm_head_;  // (V, D), undefined when tied
};

}  // namespace pf
