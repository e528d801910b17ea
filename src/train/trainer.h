// The training loop: sampled batches, gradient accumulation, clipping, AdamW with
// warmup + cosine, periodic validation in bits per byte, progress lines, atomic
// checkpoints, and bit-exact resume.
#pragma once
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/batch_source.h"
#include "io/run_dir.h"
#include "models/lm.h"
#include "train/adamw.h"
#include "train/metrics_log.h"
#include "train/train_task.h"

namespace pf {

struct TrainOptions {
  int64_t batch = 16, seq = 256, steps = 1000, accum = 1, warmup = 50;
  double lr = 1e-3, min_lr_ratio = 0.1, clip = 1.0;
  double time_limit = 0;     // seconds; 0 = no limit. Stops early and checkpoints.
  int64_t stop_at_step = 0;  // stop (and checkpoint) once this step is reached; 0 = off
  AdamWConfig adam;
  float dropout = 0.0f;
  bool recompute = false;  // activation recomputation per block: less memory, ~1/3 more compute
  int64_t eval_every = 100, eval_batches = 16, log_every = 10, save_every = 0;
  uint64_t seed = 1;
  std::string out_dir;                   // where checkpoints go; empty = none
  std::vector<std::string> extra_files;  // copied into every checkpoint (tokenizer files)
  bool quiet = false;

  nlohmann::json to_json() const;
  static TrainOptions from_json(const nlohmann::json& j);
  // Every option in its valid range; errors name the CLI flag ("--lr -1 is outside ...").
  void validate() const;
};

// trainer_state.json of a checkpoint, checked: counts in range, options valid.
struct TrainerState {
  int64_t step = 0, adam_steps = 0;
  std::string arch;
  TrainOptions options;
};
TrainerState read_trainer_state(const std::string& path);

struct TrainResult {
  int64_t steps_done = 0;
  std::vector<double> losses;  // training loss per step taken in this run
  // The task's validation score (bits per byte for a language model) and items (tokens
  // with a loss, or examples) per second.
  double val_bpb = 0, tokens_per_sec = 0, seconds = 0;
  bool stopped_by_time = false;
};

class Trainer {
 public:
  // Checkpoints and metrics.jsonl go to run_dir, or (when null) to a RunDir opened on
  // opt.out_dir, if any.
  Trainer(LanguageModel& model, const BatchSource& data, const TrainOptions& opt,
          std::unique_ptr<RunDir> run_dir = nullptr);
  // Any task: classification, masked prediction, next-token prediction.
  Trainer(TrainTask& task, const TrainOptions& opt, std::unique_ptr<RunDir> run_dir = nullptr);
  // Loads weights, optimizer moments and the step counter from a checkpoint directory.
  void resume_from(const std::string& dir);
  TrainResult run();
  // The task's validation score over up to max_batches batches (bits per byte for a
  // language model).
  double evaluate_bpb(int64_t max_batches) { return task_->validate(opt_.batch, max_batches); }
  int64_t step() const { return step_; }
  // A file every checkpoint carries (e.g. task.json); its name must be one RunDir knows.
  void add_checkpoint_file(const std::string& name, const std::string& bytes) {
    extra_blobs_.emplace_back(name, bytes);
  }
  // Path of the last checkpoint this trainer wrote; empty before the first.
  const std::string& last_checkpoint() const { return last_checkpoint_; }

 private:
  void init();
  double train_step();
  void save_checkpoint();

  std::unique_ptr<TrainTask> own_task_;  // the LmTask of the language-model constructor
  TrainTask* task_;
  Model& model_;
  TrainOptions opt_;
  std::unique_ptr<AdamW> adam_;
  std::unique_ptr<RunDir> run_dir_;  // locked for the trainer's lifetime; null without out_dir
  std::unique_ptr<MetricsLog> metrics_;  // opened by run(), once the starting step is known
  std::string last_checkpoint_;
  // extra_files, read at the start: a resumed run removes the checkpoint they came from.
  std::vector<std::pair<std::string, std::string>> extra_blobs_;
  int64_t step_ = 0;
};

}  // namespace pf
