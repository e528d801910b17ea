// What the trainer optimises: a model, the loss of a sampled batch, and a validation score.
// Next-token prediction on a corpus is one task (train/lm_task.h), classification another
// (train/classify_task.h); the loop, the optimizer, checkpoints and resume are shared.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "autograd/tape.h"
#include "models/lm.h"
#include "models/model.h"

namespace pf {

class TrainTask {
 public:
  virtual ~TrainTask() = default;
  virtual Model& model() = 0;
  // Mean loss of training micro-batch `sample` of `batch` items, recorded on the active
  // tape; a pure function of (seed, sample) so resumed runs see the same batches.
  virtual Var train_loss(int64_t batch, uint64_t seed, uint64_t sample,
                         const ForwardOptions& fo) = 0;
  // The validation score over up to max_batches batches (without a tape).
  virtual double validate(int64_t batch, int64_t max_batches) = 0;
  // Items with a loss in one batch: tokens for a language model, examples for a classifier.
  virtual int64_t items_per_batch(int64_t batch) const = 0;
  // Throws a pf::Error naming the flag when batches of this size cannot be drawn.
  virtual void check_fits(int64_t batch) const = 0;

  // Names in metrics.jsonl and the progress line.
  virtual std::string items_key() const { return "tokens"; }   // "tokens", "examples"
  virtual std::string rate_unit() const { return "tok/s"; }    // progress line
  virtual std::string val_key() const { return "val_bpb"; }    // metrics.jsonl
  virtual std::string val_label() const { return "val bpb"; }  // progress line
  virtual std::string format_val(double v) const;              // "1.2345", "91.2%"
  // Extra training columns of a metrics row from the mean loss since the last row.
  virtual void add_train_metrics(nlohmann::json& row, double mean_loss) const {}
};

}  // namespace pf
