// A training run's output directory, which survives any sequence of crashes:
//   DIR/.postformer-run    marker: postformer made (or adopted) this directory
//   DIR/latest             the name of the newest complete checkpoint, replaced atomically
//   DIR/step-000001000/    one complete checkpoint (config.json, model.safetensors, ...)
// A save fills DIR/.step-000001000.tmp, syncs it, renames it into place, points `latest`
// at it, and only then removes the checkpoint it replaced: at every instant `latest`
// names a complete checkpoint. Only files postformer writes are ever removed.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace pf {

class RunDir {
 public:
  // Refuses an --out that a new run must not write: a file, a directory of someone
  // else's files, or (without overwrite, unless resuming it) another run's checkpoint.
  static void check_out_dir(const std::string& dir, bool overwrite, bool resuming);

  // Creates or adopts `dir`, takes its advisory lock (a second run writing it is refused)
  // and removes leftovers of interrupted saves.
  explicit RunDir(const std::string& dir);
  ~RunDir();  // a directory it created and never saved into is removed again
  RunDir(const RunDir&) = delete;
  RunDir& operator=(const RunDir&) = delete;

  // Writes one checkpoint through fill(tmp_dir) and makes it the latest; returns its path.
  std::string save(int64_t step, const std::function<void(const std::string&)>& fill);
  const std::string& dir() const { return dir_; }

 private:
  void remove_stale();

  std::string dir_;
  int lock_fd_ = -1;
  bool created_ = false, saved_ = false;
};

// Where the newest complete checkpoint of `dir` lives: DIR/<latest> for a run directory,
// DIR itself for a plain model directory (config.json + weights, e.g. a published model).
std::string resolve_checkpoint_dir(const std::string& dir);
// The latest checkpoint's step in a run directory; -1 when it holds none.
int64_t latest_checkpoint_step(const std::string& dir);

}  // namespace pf
