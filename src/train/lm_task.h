// Next-token prediction on a BatchSource (a corpus or a synthetic task): cross-entropy on
// the positions the model returns logits for, validated in bits per byte.
#pragma once
#include "data/batch_source.h"
#include "train/train_task.h"

namespace pf {

class LmTask : public TrainTask {
 public:
  LmTask(LanguageModel& model, const BatchSource& data, int64_t seq)
      : model_(model), data_(data), seq_(seq) {}
  Model& model() override { return model_; }
  Var train_loss(int64_t batch, uint64_t seed, uint64_t sample, const ForwardOptions& fo) override;
  double validate(int64_t batch, int64_t max_batches) override;  // bits per byte
  int64_t items_per_batch(int64_t batch) const override {
    return batch * model_.loss_rows(seq_);
  }
  void check_fits(int64_t batch) const override;
  void add_train_metrics(nlohmann::json& row, double mean_loss) const override;

 private:
  LanguageModel& model_;
  const BatchSource& data_;
  int64_t seq_;
};

}  // namespace pf
