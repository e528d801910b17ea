#include "io/run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

#include "base/error.h"
#include "io/atomic_file.h"
#include "io/fault_inject.h"

namespace pf {

namespace fs = std::filesystem;

namespace {

constexpr const char* kMarker = ".postformer-run";
constexpr const char* kLatest = "latest";
constexpr const char* kMetrics = "metrics.jsonl";  // train/metrics_log.h writes it

// Every file a checkpoint may hold; nothing else is ever deleted.
const char* const kCheckpointFiles[] = {
    "config.json",           "model.safetensors",       "optimizer.safetensors",
    "trainer_state.json",    "tokenizer.json",          "tokenizer.model",
    "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
    "task.json"};

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// "NAME" or "NAME.tmp.<pid>" (what write_file_atomic leaves when killed) for a known NAME.
bool is_our_file(const std::string& name, const std::vector<std::string>& known) {
  for (const std::string& k : known) {
    if (name == k) return true;
    const std::string tmp = k + ".tmp.";
    if (name.rfind(tmp, 0) == 0 && all_digits(name.substr(tmp.size()))) return true;
  }
  return false;
}

std::vector<std::string> checkpoint_files() {
  return std::vector<std::string>(std::begin(kCheckpointFiles), std::end(kCheckpointFiles));
}

// step-<digits> or step-<digits>.<digits>: the names save() gives checkpoints.
bool is_checkpoint_name(const std::string& name) {
  if (name.rfind("step-", 0) != 0) return false;
  const std::string rest = name.substr(5);
  const size_t dot = rest.find('.');
  if (dot == std::string::npos) return all_digits(rest);
  return all_digits(rest.substr(0, dot)) && all_digits(rest.substr(dot + 1));
}

// A save in progress: .step-<...>.tmp
bool is_partial_name(const std::string& name) {
  const std::string suffix = ".tmp";
  return name.size() > 1 + suffix.size() && name[0] == '.' &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
         is_checkpoint_name(name.substr(1, name.size() - 1 - suffix.size()));
}

// Removes the files a checkpoint directory holds that we wrote, then the directory if it
// is empty; anything else in it is left where it is.
void remove_checkpoint_dir(const fs::path& d) {
  const std::vector<std::string> known = checkpoint_files();
  std::error_code ec;
  // A symlink in our place leads to someone else's files: neither it nor its target goes.
  if (fs::is_symlink(fs::symlink_status(d, ec))) return;
  for (const auto& e : fs::directory_iterator(d, ec)) {
    const std::string name = e.path().filename().string();
    if (!fs::is_regular_file(e.symlink_status(ec)) || !is_our_file(name, known)) continue;
    file_op_point("remove", e.path().string());
    fs::remove(e.path(), ec);
  }
  file_op_point("remove-dir", d.string());
  if (!fs::remove(d, ec) && fs::exists(d))
    std::fprintf(stderr, "note: kept %s: it holds files postformer did not write\n",
                 d.string().c_str());
}

// The checkpoint `latest` names, validated; empty when there is no `latest`.
std::string read_latest(const fs::path& dir) {
  const fs::path p = dir / kLatest;
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(p, ec))) return "";
  std::string name = read_file(p.string(), 4096);
  while (!name.empty() && (name.back() == '\n' || name.back() == '\r')) name.pop_back();
  PF_CHECK(is_checkpoint_name(name), p.string(), ": '", name,
           "' is not a checkpoint name (step-<number>)");
  PF_CHECK(fs::exists(dir / name / "config.json"), p.string(), " names ", name,
           ", which holds no config.json");
  return name;
}

bool is_run_dir(const fs::path& dir) {
  std::error_code ec;
  return fs::exists(dir / kMarker, ec) || fs::exists(dir / kLatest, ec) ||
         // Checkpoints of earlier versions were flat directories.
         (fs::exists(dir / "config.json", ec) && fs::exists(dir / "trainer_state.json", ec));
}

int64_t step_of(const std::string& name) {
  const std::string digits =
      name.substr(5, name.find('.') == std::string::npos ? std::string::npos : name.find('.') - 5);
  return digits.size() > 18 ? -1 : std::stoll(digits);
}

}  // namespace

void RunDir::check_out_dir(const std::string& dir, bool overwrite, bool resuming) {
  std::error_code ec;
  const fs::file_status st = fs::status(dir, ec);
  if (!fs::exists(st)) {
    // It will be created: the nearest existing ancestor must be a directory.
    fs::path p = fs::absolute(dir).parent_path();
    while (!p.empty() && !fs::exists(fs::status(p, ec)) && p != p.root_path()) p = p.parent_path();
    PF_CHECK(p.empty() || fs::is_directory(fs::status(p, ec)), "--out ", dir, ": ", p.string(),
             " is not a directory, so ", dir, " cannot be created");
    return;
  }
  PF_CHECK(fs::is_directory(st), "--out ", dir,
           " exists and is not a directory; give the path of a new or empty directory");
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(dir, ec)) entries.push_back(e.path().filename());
  PF_CHECK(!ec, "--out ", dir, ": cannot list the directory: ", ec.message());
  if (entries.empty()) return;
  if (!is_run_dir(dir))
    fail("--out ", dir, " is not empty and is not a postformer run directory (it holds '",
         entries.front(), "'",
         entries.size() > 1 ? " and " + std::to_string(entries.size() - 1) + " more" : "",
         "); give a new or empty directory. Nothing in it was changed.");
  const int64_t step = latest_checkpoint_step(dir);
  if (!resuming && !overwrite && step >= 0)
    fail("--out ", dir, " holds the checkpoint of another run (step ", step,
         "); continue that run with --resume ", dir,
         ", or pass --overwrite to replace it (it is removed once this run saves its first)");
}

RunDir::RunDir(const std::string& dir) : dir_(dir) {
  std::error_code ec;
  if (!fs::exists(dir_, ec)) {
    created_ = fs::create_directories(dir_, ec);
    PF_CHECK(!ec, "cannot create the output directory ", dir_, ": ", ec.message());
  }
  lock_fd_ = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  PF_CHECK(lock_fd_ >= 0, "cannot open the output directory ", dir_, ": ", std::strerror(errno));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int saved = errno;
    ::close(lock_fd_);
    lock_fd_ = -1;
    if (saved == EWOULDBLOCK)
      fail("output directory ", dir_,
           " is in use by another postformer run; wait for it to finish or choose another --out");
    fail("cannot lock the output directory ", dir_, ": ", std::strerror(saved));
  }
  try {
    const std::string marker = (fs::path(dir_) / kMarker).string();
    if (!fs::exists(marker)) {
      // An empty file made in one step: a crash leaves it whole or absent.
      file_op_point("create", marker);
      const int fd = ::open(marker.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      PF_CHECK(fd >= 0, "cannot create ", marker, ": ", std::strerror(errno));
      ::close(fd);
      sync_dir(marker);
    }
    remove_stale();
  } catch (...) {
    ::close(lock_fd_);
    lock_fd_ = -1;
    throw;
  }
}

RunDir::~RunDir() {
  if (lock_fd_ < 0) return;
  // A run refused before its first save leaves nothing behind.
  if (created_ && !saved_) {
    std::error_code ec;
    fs::remove(fs::path(dir_) / kMetrics, ec);
    fs::remove(fs::path(dir_) / kMarker, ec);
    fs::remove(dir_, ec);  // only if now empty
  }
  ::close(lock_fd_);  // closing releases the lock
}

void RunDir::remove_stale() {
  const std::string latest = read_latest(dir_);
  std::error_code ec;
  std::vector<fs::path> stale;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    const fs::file_status st = e.symlink_status(ec);  // links are never followed
    if (fs::is_directory(st) &&
        (is_partial_name(name) || (is_checkpoint_name(name) && name != latest)))
      stale.push_back(e.path());
    else if (fs::is_regular_file(st) && is_our_file(name, {kLatest, kMarker, kMetrics}) &&
             name != kLatest && name != kMarker && name != kMetrics)
      stale.push_back(e.path());
  }
  for (const fs::path& p : stale) {
    if (fs::is_directory(fs::symlink_status(p, ec))) {
      remove_checkpoint_dir(p);
    } else {
      file_op_point("remove", p.string());
      fs::remove(p, ec);
    }
  }
}

std::string RunDir::save(int64_t step, const std::function<void(const std::string&)>& fill) {
  const fs::path root(dir_);
  const std::string latest = read_latest(root);
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%09lld", static_cast<long long>(step));
  std::string name = buf;
  // The same step saved twice (a resumed run that takes no step) gets a fresh name.
  for (int k = 1; fs::exists(root / name); ++k) name = std::string(buf) + "." + std::to_string(k);
  const fs::path tmp = root / ("." + name + ".tmp");
  std::error_code ec;
  if (fs::exists(tmp)) remove_checkpoint_dir(tmp);
  file_op_point("create-dir", tmp.string());
  fs::create_directory(tmp, ec);
  PF_CHECK(!ec, "cannot create ", tmp.string(), ": ", ec.message());
  try {
    fill(tmp.string());
  } catch (...) {
    remove_checkpoint_dir(tmp);
    throw;
  }
  file_op_point("rename-dir", (root / name).string());
  fs::rename(tmp, root / name, ec);
  PF_CHECK(!ec, "cannot rename ", tmp.string(), " to ", name, ": ", ec.message());
  sync_dir((root / name).string());
  write_file_atomic((root / kLatest).string(), name + "\n");
  saved_ = true;
  if (!latest.empty()) remove_checkpoint_dir(root / latest);
  return (root / name).string();
}

std::string resolve_checkpoint_dir(const std::string& dir) {
  const fs::path root(dir);
  std::error_code ec;
  PF_CHECK(fs::exists(root, ec), "model directory ", dir, " does not exist");
  PF_CHECK(fs::is_directory(root, ec), dir, " is not a directory (give a model directory)");
  const std::string latest = read_latest(root);
  if (!latest.empty()) return (root / latest).string();
  if (fs::exists(root / "config.json", ec)) return dir;
  PF_CHECK(!fs::exists(root / kMarker, ec), dir,
           " holds no complete checkpoint yet (its run stopped before the first save)");
  fail(dir, " has no config.json (not a model directory)");
}

int64_t latest_checkpoint_step(const std::string& dir) {
  const std::string latest = read_latest(dir);
  if (!latest.empty()) return step_of(latest);
  std::error_code ec;
  if (fs::exists(fs::path(dir) / "trainer_state.json", ec)) return 0;  // an older flat one
  return -1;
}

}  // namespace pf
