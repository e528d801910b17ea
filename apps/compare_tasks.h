// `compare --tasks`: small models of each architecture (matched parameters again) trained on
// each synthetic task, scored at several lengths (and MQAR at several pair counts).
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/compare_worker.h"

namespace pf::cli {

struct TaskSuiteSettings {
  std::vector<std::string> tasks = {"selective_copy", "induction", "mqar"};
  int64_t steps = 1500, width = 64, depth = 2, batch = 32, sequences = 64;
  double lr = 3e-3;
  int64_t train_length = 256;                               // selective copy and induction
  std::vector<int64_t> lengths = {256, 1024, 4096, 16384};  // induction is scored at these
  int64_t mqar_length = 128, mqar_vocab = 8192;
  std::vector<int64_t> mqar_pairs = {4, 8, 16, 32};
};

void add_task_suite_flags(CLI::App& cmd, TaskSuiteSettings& t);
void validate_task_suite(const TaskSuiteSettings& t);

// Trains and scores `label` on every task; returns {"induction": [{length, accuracy}], ...}.
nlohmann::json run_task_suite(const TaskSuiteSettings& t, const std::string& label,
                              const CompareSettings& s);

}  // namespace pf::cli
