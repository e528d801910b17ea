// Classification as a training task: batches drawn from a LabeledSet in a fresh shuffle each
// epoch (a pure function of seed and step, so resume sees the same batches), cross-entropy
// on the class logits, validated as accuracy.
#pragma once
#include <vector>

#include "data/input_spec.h"
#include "data/labeled_set.h"
#include "models/classify/classifier.h"
#include "train/train_task.h"

namespace pf {

class ClassifyTask : public TrainTask {
 public:
  ClassifyTask(Classifier& model, const InputSpec& spec, const LabeledSet& train,
               const LabeledSet& val);
  Model& model() override { return model_; }
  Var train_loss(int64_t batch, uint64_t seed, uint64_t sample, const ForwardOptions& fo) override;
  double validate(int64_t batch, int64_t max_batches) override;  // accuracy in %
  int64_t items_per_batch(int64_t batch) const override { return batch; }
  void check_fits(int64_t batch) const override;
  std::string items_key() const override { return "examples"; }
  std::string rate_unit() const override { return "ex/s"; }
  std::string val_key() const override { return "val_accuracy"; }
  std::string val_label() const override { return "val acc"; }
  std::string format_val(double v) const override;

 private:
  const std::vector<int64_t>& epoch_order(uint64_t seed, int64_t epoch);
  Classifier& model_;
  InputSpec spec_;
  std::vector<float> positions_;
  const LabeledSet& train_;
  const LabeledSet& val_;
  int64_t cached_epoch_ = -1;
  uint64_t cached_seed_ = 0;
  std::vector<int64_t> order_;
};

struct Predictions {
  std::vector<int32_t> labels;  // (n) the argmax class
  std::vector<float> probs;     // (n, K) softmax
};
// Every example of `set` through the model, `batch` at a time, without a tape.
Predictions predict_set(Classifier& model, const InputSpec& spec, const LabeledSet& set,
                        int64_t batch);
// Softmax of logits (n, K) rows.
std::vector<float> softmax_rows(const Tensor& logits);

}  // namespace pf
