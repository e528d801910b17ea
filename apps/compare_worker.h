// The per-architecture work of `compare`, each run in a child process of its own so that
// its peak memory is its own and one failure leaves the others' results standing.
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/compare_sizing.h"

namespace pf::cli {

struct CompareSettings {
  std::string data;
  double val_fraction = 0.01;
  int64_t batch = 16, seq = 256, warmup = 30, eval_batches = 4, evals = 8;
  int64_t latents = 0;  // Perceiver AR's latents in its window of seq tokens (0 = seq / 4)
  double lr = 2e-3;
  uint64_t seed = 1;
  std::vector<int64_t> contexts;
  int64_t decode_steps = 16, prefill_tokens = 2048;
  int threads = 0;
};

// Seconds per training step of `arch` (a few steps timed after a warm-up one).
double calibrate_step_seconds(const CompareSettings& s, const SizedArch& arch);

// Trains `arch` for `steps` in run_dir (resuming its checkpoint if it has one), then
// measures validation bpb, prefill and decode. Returns the arch's entry of results.json
// without its curve (the parent reads that from run_dir/metrics.jsonl).
nlohmann::json train_and_measure(const CompareSettings& s, const SizedArch& arch, int64_t steps,
                                 const std::string& run_dir);

// Runs work() in a forked child and writes what it returns to result_path (atomically).
// Returns true when the child succeeded; its error message has gone to stderr otherwise.
bool run_in_child(const std::function<nlohmann::json()>& work, const std::string& result_path);

}  // namespace pf::cli
