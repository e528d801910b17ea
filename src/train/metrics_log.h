// metrics.jsonl of a run directory: one JSON object per logged training step (step, tokens,
// loss, val_bpb, lr, tokens_per_s, peak_mem_mib, seconds), for `plot` and `compare`.
#pragma once
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace pf {

inline constexpr const char* kMetricsFile = "metrics.jsonl";

class MetricsLog {
 public:
  // Opens DIR/metrics.jsonl for appending. A resumed run (keep_up_to_step >= 0) keeps the
  // lines up to that step and drops any a crash left after its checkpoint; a fresh run
  // (keep_up_to_step < 0) starts the file empty.
  MetricsLog(const std::string& dir, int64_t keep_up_to_step);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  // Appends one line and flushes it, so a reader (or `plot`) sees it at once.
  void append(const nlohmann::json& row);

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
};

// The rows of a metrics.jsonl (or of RUN/metrics.jsonl when given a directory). A torn last
// line (a crash mid-write) is skipped; any other malformed line is an error naming it.
std::vector<nlohmann::json> read_metrics(const std::string& path_or_run_dir);

}  // namespace pf
