// Accuracy of a language model on a synthetic task: the share of answer positions (targets
// >= 0) whose argmax prediction is the answer.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "models/lm.h"
#include "tasks/synthetic_task.h"

namespace pf {

struct TaskScore {
  int64_t length = 0, answers = 0, correct = 0;
  double accuracy() const { return answers > 0 ? static_cast<double>(correct) / answers : 0.0; }
};

// Scores `sequences` validation sequences of length T (the same ones every call).
TaskScore task_accuracy(LanguageModel& model, const SyntheticTask& task, int64_t T,
                        int64_t sequences);

struct TaskResultRow {
  std::string task;
  int64_t length = 0, pairs = 0, answers = 0;  // pairs: mqar only
  double accuracy = 0;
  nlohmann::json to_json() const;
};

// Accuracy at every length (and, for mqar, at every pair count of opt.pairs separately);
// prints one line per row when `print`.
std::vector<TaskResultRow> score_task(LanguageModel& model, const TaskOptions& opt,
                                      const std::vector<int64_t>& lengths, int64_t sequences,
                                      bool print);

}  // namespace pf
