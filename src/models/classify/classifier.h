// Classifiers over input arrays: each example is an array of N elements with C channels
// (pixels or patches with their position features, log-mel frames, bytes), mapped to K
// class logits. Perceiver IO reads the array by cross-attention into latents; the sequence
// backbones (Mamba, RetNet, Transformer, hybrids) run their block stack over it as a
// sequence and pool.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>

#include "models/lm.h"
#include "models/model.h"

namespace pf {

class Classifier : public Model {
 public:
  virtual int64_t num_classes() const = 0;
  virtual int64_t input_length() const = 0;    // N
  virtual int64_t input_channels() const = 0;  // C
  // x: (B, N, C) -> logits (B, K), recorded on the active tape if any.
  virtual Var forward(const Var& x, const ForwardOptions& opt) = 0;
};

// Builds a randomly initialised classifier from its config.json: "model_type" is
// "perceiver_io" or "sequence_classifier" (a backbone config under "backbone").
std::unique_ptr<Classifier> create_classifier(const nlohmann::json& config, uint64_t seed);

}  // namespace pf
