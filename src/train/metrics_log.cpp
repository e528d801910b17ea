#include "train/metrics_log.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "base/error.h"
#include "io/atomic_file.h"

namespace pf {

namespace fs = std::filesystem;

namespace {

// Every line of the file, parsed; `torn` tells whether the last one was incomplete.
std::vector<nlohmann::json> parse_lines(const std::string& path, const std::string& text) {
  std::vector<nlohmann::json> rows;
  std::istringstream in(text);
  std::string line;
  int64_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty()) continue;
    const bool last = in.peek() == std::char_traits<char>::eof();
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      if (last && text.back() != '\n') break;  // torn by a crash while it was written
      fail(path, ": line ", lineno, " is not a JSON object");
    }
    PF_CHECK(j.contains("step") && j["step"].is_number_integer(), path, ": line ", lineno,
             " has no integer 'step'");
    rows.push_back(std::move(j));
  }
  return rows;
}

}  // namespace

MetricsLog::MetricsLog(const std::string& dir, int64_t keep_up_to_step)
    : path_((fs::path(dir) / kMetricsFile).string()) {
  std::string kept;
  std::error_code ec;
  if (keep_up_to_step >= 0 && fs::exists(path_, ec)) {
    for (const nlohmann::json& row : read_metrics(path_))
      if (row["step"].get<int64_t>() <= keep_up_to_step) kept += row.dump() + "\n";
  }
  write_file_atomic(path_, kept);
  f_ = std::fopen(path_.c_str(), "a");
  PF_CHECK(f_, "cannot open ", path_, " for appending: ", std::strerror(errno));
}

MetricsLog::~MetricsLog() {
  if (f_) std::fclose(f_);
}

void MetricsLog::append(const nlohmann::json& row) {
  const std::string line = row.dump() + "\n";
  PF_CHECK(std::fwrite(line.data(), 1, line.size(), f_) == line.size() && std::fflush(f_) == 0,
           "cannot write ", path_, ": ", std::strerror(errno));
}

std::vector<nlohmann::json> read_metrics(const std::string& path_or_run_dir) {
  std::error_code ec;
  std::string path = path_or_run_dir;
  if (fs::is_directory(path, ec)) path = (fs::path(path) / kMetricsFile).string();
  PF_CHECK(fs::exists(path, ec), path, " does not exist (a run writes metrics.jsonl as it trains)");
  return parse_lines(path, read_file(path));
}

}  // namespace pf
