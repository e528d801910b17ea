// Synthetic capability tasks (../shared/SPEC.md), generated on the fly: selective copying,
// induction heads and multi-query associative recall (MQAR, the Zoology set-up). Each is a
// BatchSource whose targets are -1 except at the answer positions, so training and accuracy
// score only the answers.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/rng.h"
#include "data/batch_source.h"

namespace pf {

struct TaskOptions {
  std::string name;          // selective_copy | induction | mqar
  int64_t vocab = 0;         // 0 = the task's default (16, 16, 8192)
  int64_t data_tokens = 16;  // selective copying: tokens to copy
  // MQAR: key-value pair counts; each sequence draws one of them. Empty = {T/4}.
  std::vector<int64_t> pairs = {};
  double power_a = 0.01;  // MQAR: query gaps p(g) ~ g^(a-1) (Zoology's default)
  nlohmann::json to_json() const;
  static TaskOptions from_json(const nlohmann::json& j);
};

class SyntheticTask : public BatchSource {
 public:
  explicit SyntheticTask(TaskOptions opt);
  ~SyntheticTask() override = default;
  // One sequence of T tokens: inputs (T) and targets (T, -1 where nothing is scored).
  virtual void make_sequence(Rng& rng, int64_t T, int32_t* inputs, int32_t* targets) const = 0;
  // Shortest T the task can be generated at.
  virtual int64_t min_length() const = 0;

  Batch train_batch(int64_t B, int64_t T, uint64_t seed, uint64_t step) const override;
  // Validation sequences come from their own stream, disjoint from any training seed's.
  Batch val_batch(int64_t B, int64_t T, int64_t index) const override;
  int64_t num_val_batches(int64_t, int64_t) const override { return int64_t{1} << 30; }
  double bytes_per_token() const override { return 1.0; }
  void check_fits(int64_t B, int64_t T) const override;

  const TaskOptions& options() const { return opt_; }
  int64_t vocab_size() const { return opt_.vocab; }

 protected:
  TaskOptions opt_;
};

// Builds a task by name; errors list the known names.
std::unique_ptr<SyntheticTask> make_task(const TaskOptions& opt);
std::vector<std::string> task_names();

}  // namespace pf
