// What every trainable model is, whatever it predicts: named parameters and the config that
// rebuilds it. Language models (models/lm.h) and classifiers (models/classifier.h) extend
// it; the trainer, the optimizer and checkpoints need nothing more.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "nn/params.h"

namespace pf {

class Model {
 public:
  virtual ~Model() = default;
  virtual std::string arch() const = 0;
  // Every parameter once, under its checkpoint name.
  virtual void visit_params(const ParamVisitor& visit) = 0;
  // The config.json this model saves.
  virtual nlohmann::json config_json() const = 0;

  int64_t num_params();
};

}  // namespace pf
