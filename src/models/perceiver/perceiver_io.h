// Perceiver IO (Jaegle et al. 2021; deepmind-research/perceiver) as a classifier: the input
// array (B, N, C), projected to the latent width, is read by cross-attention into M learned
// latents; blocks of non-causal self-attention refine them; one learned output query
// cross-attends to the latents and a linear head gives the class logits.
//
// The encoder can repeat (the Perceiver's iterative attention): each repeat is a
// cross-attend followed by the latent blocks. With share_weights, repeats after the first
// reuse one set of weights, as the Perceiver paper shares all but the first. Within a
// repeat the stack of num_self_attends_per_block layers runs num_blocks times with the same
// weights, as Perceiver IO's num_blocks does.
//
// Differences from the reference: RMSNorm for LayerNorm, no biases, SwiGLU MLPs, and the
// input is projected to the latent width before the cross-attention's key/value norm.
#pragma once
#include <memory>
#include <vector>

#include "models/classify/classifier.h"
#include "models/core/block.h"
#include "models/mixers/cross_attention.h"

namespace pf {

struct PerceiverIoConfig {
  int64_t input_length = 784;  // N
  int64_t input_channels = 1;  // C
  int64_t num_labels = 10;     // K
  int64_t num_latents = 64;    // M
  int64_t d_latents = 128;     // D
  int64_t num_blocks = 1;
  int64_t num_self_attends_per_block = 4;
  int64_t num_self_attention_heads = 4;
  int64_t num_cross_attention_heads = 1;
  int64_t self_attention_widening_factor = 2;   // MLP width = factor * D
  int64_t cross_attention_widening_factor = 2;
  int64_t cross_attend_repeats = 1;
  bool share_weights = true;
  double norm_eps = 1e-5;
  nlohmann::json extra;  // keys the model does not read (front end, labels), kept as given

  // Distinct weight sets of the encoder: 1, 2 with sharing, else one per repeat.
  int64_t encoder_sets() const {
    return cross_attend_repeats == 1 ? 1 : (share_weights ? 2 : cross_attend_repeats);
  }
  static PerceiverIoConfig from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
};

class PerceiverIO : public Classifier {
 public:
  PerceiverIO(const PerceiverIoConfig& c, uint64_t seed);
  std::string arch() const override { return "perceiver-io"; }
  void visit_params(const ParamVisitor& visit) override;
  nlohmann::json config_json() const override { return c_.to_json(); }
  int64_t num_classes() const override { return c_.num_labels; }
  int64_t input_length() const override { return c_.input_length; }
  int64_t input_channels() const override { return c_.input_channels; }
  Var forward(const Var& x, const ForwardOptions& opt) override;

  // q + attn(norm_q(q), norm_kv(kv)) then the MLP: one cross-attend (also self-attention
  // when kv is q).
  struct AttendLayer {
    Var q_norm, kv_norm;  // (D)
    std::unique_ptr<CrossAttention> attn;
    std::unique_ptr<Mlp> mlp;
  };
  struct EncoderSet {
    AttendLayer cross;
    std::vector<AttendLayer> self;  // num_self_attends_per_block
  };

 private:
  PerceiverIoConfig c_;
  Var input_proj_;  // (D, C)
  Var latents_;     // (M, D)
  std::vector<EncoderSet> sets_;
  Var query_;  // (1, D): the output query
  AttendLayer decoder_;
  Var final_norm_;  // (D)
  Var head_;        // (K, D)
};

}  // namespace pf
