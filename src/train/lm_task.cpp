#include "train/lm_task.h"

#include <cmath>
#include <cstdio>

#include "autograd/ops.h"
#include "base/error.h"

namespace pf {

std::string TrainTask::format_val(double v) const {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

Var LmTask::train_loss(int64_t batch, uint64_t seed, uint64_t sample, const ForwardOptions& fo) {
  Batch b = data_.train_batch(batch, seq_, seed, sample);
  Var logits = model_.forward(b.inputs, b.B, b.T, fo);
  return cross_entropy(logits, tail_targets(b, model_.loss_rows(b.T)));
}

double LmTask::validate(int64_t batch, int64_t max_batches) {
  NoGradScope no_grad;
  const int64_t n = std::min(max_batches, data_.num_val_batches(batch, seq_));
  PF_CHECK(n > 0, "no validation batch of ", batch, " x ", seq_);
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    Batch b = data_.val_batch(batch, seq_, i);
    Var logits = model_.forward(b.inputs, b.B, b.T, ForwardOptions{});
    total += cross_entropy(logits, tail_targets(b, model_.loss_rows(b.T))).value().data()[0];
  }
  return total / n / std::log(2.0) / data_.bytes_per_token();
}

void LmTask::check_fits(int64_t batch) const {
  PF_CHECK(seq_ <= model_.max_context(), "--seq ", seq_, " exceeds the model's context ",
           model_.max_context());
  data_.check_fits(batch, seq_);
}

void LmTask::add_train_metrics(nlohmann::json& row, double mean_loss) const {
  row["train_bpb"] = mean_loss / std::log(2.0) / data_.bytes_per_token();
}

}  // namespace pf
