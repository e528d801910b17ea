// Perceiver AR (Hawthorne et al. 2022; google-research/perceiver-ar): the last M positions
// of a window of L tokens are the latents. Layer 0 cross-attends from the latents to all L
// inputs with a right-aligned causal mask; layers 1.. are causal self-attention blocks over
// the M latents only. Logits and the loss are on the latent positions.
//
// On the shared stack: the self-attention layers are Blocks with the attention mixer and
// SwiGLU MLP, the cross layer is x_lat + cross(norm(x_lat), norm_kv(x_all)) then the same
// MLP. RMSNorm and no biases as everywhere else in postformer; RoPE as the reference uses
// it (rotate-every-two on a fraction of each head, log-spaced wavelengths up to rope_theta).
#pragma once
#include <memory>

#include "models/core/decoder_lm.h"
#include "models/mixers/attention.h"
#include "models/mixers/cross_attention.h"

namespace pf {

struct PerceiverArConfig {
  int64_t vocab_size = 256;
  int64_t hidden_size = 256;
  int64_t intermediate_size = 688;
  int64_t num_hidden_layers = 4;  // layer 0 is the cross-attention
  int64_t num_attention_heads = 4;
  int64_t num_key_value_heads = 4;
  int64_t context_length = 1024;  // L
  int64_t num_latents = 256;      // M
  double rms_norm_eps = 1e-5;
  double rope_theta = 8192.0;     // the reference's max_wavelength (at least L)
  double rotary_fraction = 0.25;  // share of each head's dims that RoPE rotates
  bool tie_word_embeddings = true;
  nlohmann::json source;
  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  int64_t rotary_dim() const;
  // The one place the layers' shapes come from (the stack's latent blocks, the model's
  // cross layer, the parameter count).
  AttentionSpec self_attention() const;  // the latent layers' mixer
  CrossAttentionSpec cross_attention() const;

  static PerceiverArConfig from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
};

StackSpec perceiver_ar_stack(const nlohmann::json& config);

class PerceiverAR : public LanguageModel {
 public:
  PerceiverAR(StackSpec spec, const PerceiverArConfig& c, uint64_t seed);
  std::string arch() const override { return spec_.arch; }
  int64_t vocab_size() const override { return spec_.vocab; }
  int64_t max_context() const override { return c_.context_length; }
  bool stream_eval() const override { return true; }
  int64_t loss_rows(int64_t T) const override { return std::min(T, c_.num_latents); }
  void visit_params(const ParamVisitor& visit) override;
  Var forward(const std::vector<int32_t>& tokens, int64_t B, int64_t T,
              const ForwardOptions& opt) override;
  std::unique_ptr<InferenceSession> new_session(int64_t max_tokens) override;
  nlohmann::json config_json() const override { return spec_.config; }
  int64_t state_bytes(int64_t context) const override;
  double flops_per_token(int64_t context) const override;
  std::vector<std::string> describe() const override;

  // tokens: B windows of T tokens at positions pos0 .. pos0+T-1 whose last `latents`
  // positions are the latents -> logits (B*latents, V).
  Var forward_window(const std::vector<int32_t>& tokens, int64_t B, int64_t T, int64_t latents,
                     int64_t pos0, const ForwardOptions& opt);

  // Pieces of the cached forward (perceiver_ar_session.cpp), without a tape.
  const PerceiverArConfig& config() const { return c_; }
  int64_t kv_width() const { return cross_spec_.kv_width(); }
  Var embed_rows(const int32_t* ids, int64_t n) const;  // -> (n, d)
  // x: (n, d) embedded inputs at positions pos -> cross-attention keys, values (n, KV*hd).
  void input_kv(const Var& x, const int64_t* pos, float* k, float* v) const;
  // x: (n, d) embedded latents at positions pos; k, v: (Tk, KV*hd) cached inputs, latent i
  // sees rows <= first + i; the self-attention layers continue slot 0 of `pool` -> hidden
  // (n, d) before the final norm.
  Var latent_rows(const Var& x, const int64_t* pos, const float* k, const float* v, int64_t Tk,
                  int64_t first, StatePool& pool);
  Tensor head_logits(const Tensor& h) const;  // (n, d) -> (n, V)
  std::unique_ptr<StatePool> new_latent_pool() const;

 private:
  const Var& head() const { return spec_.tied ? embed_ : lm_head_; }
  StackSpec spec_;
  PerceiverArConfig c_;
  CrossAttentionSpec cross_spec_;
  Var embed_;                       // (V, d)
  Var cross_norm_, cross_kv_norm_;  // (d), (d)
  std::unique_ptr<CrossAttention> cross_;
  std::unique_ptr<Mlp> cross_mlp_;
  std::vector<std::unique_ptr<Block>> blocks_;  // self-attention over the latents
  Var norm_f_;                                  // (d)
  Var lm_head_;                                 // (V, d), undefined when tied
};

}  // namespace pf

namespace pf {
// The window start and first latent with which the cached session predicts from the token
// at `position` (the session's re-encoding schedule; see perceiver_ar_session.cpp).
void perceiver_ar_window(int64_t position, int64_t L, int64_t M, int64_t* win, int64_t* lat);
}  // namespace pf
