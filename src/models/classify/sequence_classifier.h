// A sequence backbone as a classifier: the input array (B, N, C) is projected to d_model and
// run through a language model family's block stack (Mamba, Mamba-2, RetNet, Transformer,
// hybrid) as a sequence of N positions; the final norm's output is averaged over positions
// and a linear head gives the class logits. The block stack is the one the language model
// uses; only the embedding and the vocabulary head are replaced.
#pragma once
#include <memory>
#include <vector>

#include "models/classify/classifier.h"
#include "models/core/decoder_lm.h"

namespace pf {

class SequenceClassifier : public Classifier {
 public:
  // config: {"model_type": "sequence_classifier", "backbone": <LM config>, "input_length",
  // "input_channels", "num_labels", ...}; other keys are kept as given.
  SequenceClassifier(const nlohmann::json& config, uint64_t seed);
  std::string arch() const override { return spec_.arch; }
  void visit_params(const ParamVisitor& visit) override;
  nlohmann::json config_json() const override { return config_; }
  int64_t num_classes() const override { return K_; }
  int64_t input_length() const override { return N_; }
  int64_t input_channels() const override { return C_; }
  Var forward(const Var& x, const ForwardOptions& opt) override;

 private:
  nlohmann::json config_;
  StackSpec spec_;
  int64_t N_ = 0, C_ = 0, K_ = 0;
  Var input_proj_;  // (d, C)
  std::vector<std::unique_ptr<Block>> blocks_;
  Var norm_f_;  // (d)
  Var head_;    // (K, d)
};

}  // namespace pf
