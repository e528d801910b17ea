#include "models/classify/sequence_classifier.h"

#include <cmath>

#include "autograd/ops.h"
#include "base/checks.h"
#include "base/error.h"
#include "io/config_json.h"
#include "models/limits.h"
#include "models/perceiver/perceiver_io.h"
#include "models/registry.h"

namespace pf {

SequenceClassifier::SequenceClassifier(const nlohmann::json& config, uint64_t seed) {
  PF_CHECK(config.is_object() && config.contains("backbone") && config["backbone"].is_object(),
           "a sequence classifier config needs a 'backbone' object (a language model config)");
  N_ = json_int(config, "input_length");
  C_ = json_int(config, "input_channels");
  K_ = json_int(config, "num_labels");
  check_range("config: input_length", N_, 1, kMaxPositions);
  check_range("config: input_channels", C_, 1, kMaxWidth);
  check_range("config: num_labels", K_, 2, kMaxVocab);
  spec_ = stack_spec_for(config["backbone"]);
  PF_CHECK(!spec_.make_model, "backbone '", spec_.arch,
           "' is not a plain block stack; use perceiver (Perceiver IO) instead");
  PF_CHECK(!spec_.layers.empty(), "backbone '", spec_.arch, "' has no layers");
  PF_CHECK(N_ <= spec_.max_context, "input_length ", N_, " exceeds the backbone's context ",
           spec_.max_context);
  config_ = config;
  config_["model_type"] = "sequence_classifier";
  config_["backbone"] = spec_.config;
  Rng rng(seed, spec_.rng_stream ^ 0xc1a5);
  const int64_t d = spec_.d_model;
  input_proj_ = normal_param({d, C_}, 1.0f / std::sqrt(static_cast<float>(C_)), rng);
  const float eps = static_cast<float>(spec_.norm_eps);
  for (const BlockSpec& b : spec_.layers) blocks_.push_back(std::make_unique<Block>(b, d, eps, rng));
  norm_f_ = constant_param({d}, 1.0f);
  head_ = normal_param({K_, d}, 0.02f, rng);
}

void SequenceClassifier::visit_params(const ParamVisitor& visit) {
  visit("input_proj.weight", input_proj_, ParamKind::Matrix);
  for (auto& b : blocks_) b->visit(visit);
  visit(spec_.final_norm, norm_f_, ParamKind::Norm);
  visit("classifier.weight", head_, ParamKind::Matrix);
}

Var SequenceClassifier::forward(const Var& x, const ForwardOptions& opt) {
  PF_CHECK(x.value().dim() == 3 && x.shape()[1] == N_ && x.shape()[2] == C_, arch(),
           " classifier: input ", shape_str(x.shape()), " is not (B, ", N_, ", ", C_, ")");
  const int64_t B = x.shape()[0], T = N_;
  Var h = linear(x, input_proj_);  // (B, N, d)
  for (size_t l = 0; l < blocks_.size(); ++l) {
    const uint64_t seed = opt.dropout_seed + 2 * l;
    const float p = opt.dropout;
    Block* blk = blocks_[l].get();
    auto fn = [blk, B, T, p, seed](const Var& xin) { return blk->forward(xin, B, T, 0, p, seed); };
    h = opt.recompute ? checkpoint(fn, h) : fn(h);
  }
  h = rmsnorm(h, norm_f_, static_cast<float>(spec_.norm_eps));  // (B, N, d)
  return linear(seq_mean(h), head_);                               // (B, K)
}

std::unique_ptr<Classifier> create_classifier(const nlohmann::json& config, uint64_t seed) {
  PF_CHECK(config.is_object() && config.contains("model_type") && config["model_type"].is_string(),
           "classifier config is missing the key 'model_type'");
  const std::string mt = config["model_type"].get<std::string>();
  if (mt == "perceiver_io")
    return std::make_unique<PerceiverIO>(PerceiverIoConfig::from_json(config), seed);
  if (mt == "sequence_classifier") return std::make_unique<SequenceClassifier>(config, seed);
  fail("unsupported classifier model_type '", mt, "' (perceiver_io or sequence_classifier)");
}

}  // namespace pf
