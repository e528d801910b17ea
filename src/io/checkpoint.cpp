#include "io/checkpoint.h"

#include <filesystem>

#include "base/error.h"
#include "io/atomic_file.h"
#include "io/config_json.h"

namespace pf {

namespace fs = std::filesystem;

void load_weights(LanguageModel& m, const SafetensorsFile& f) {
  m.visit_params([&](const std::string& name, Var& p, ParamKind) {
    Tensor t = f.load_f32(name, p.shape());
    p.value().copy_from(t);
  });
}

std::string resolve_checkpoint_dir(const std::string& dir) {
  if (fs::exists(fs::path(dir) / "config.json")) return dir;
  if (fs::exists(fs::path(dir + ".old") / "config.json")) return dir + ".old";
  PF_CHECK(fs::exists(dir), "model directory ", dir, " does not exist");
  fail(dir, " has no config.json");
}

std::unique_ptr<LanguageModel> load_model(const std::string& dir_in) {
  const std::string dir = resolve_checkpoint_dir(dir_in);
  nlohmann::json cfg = read_json_file((fs::path(dir) / "config.json").string());
  std::unique_ptr<LanguageModel> m;
  try {
    m = create_model(cfg, 0);
  } catch (const Error& e) {
    fail(dir, "/config.json: ", e.what());
  }
  const fs::path st = fs::path(dir) / "model.safetensors";
  PF_CHECK(fs::exists(st), dir, " has no model.safetensors");
  SafetensorsFile f(st.string());
  load_weights(*m, f);
  return m;
}

namespace {
void fsync_dir(const fs::path& p) {
  // Best effort: the rename is durable once the parent directory is synced.
  write_file_atomic((p / ".sync").string(), std::string());
  fs::remove(p / ".sync");
}
}  // namespace

void write_dir_atomic(const std::string& dir, const std::function<void(const std::string&)>& fill) {
  const fs::path target(dir);
  const fs::path tmp = fs::path(dir + ".tmp");
  const fs::path old = fs::path(dir + ".old");
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  fill(tmp.string());
  fs::remove_all(old);
  if (fs::exists(target)) fs::rename(target, old);
  fs::rename(tmp, target);
  fs::remove_all(old);
  fsync_dir(target.has_parent_path() ? target.parent_path() : fs::path("."));
}

void write_model_files(const std::string& dir, LanguageModel& m) {
  write_file_atomic((fs::path(dir) / "config.json").string(), m.config_json().dump(2) + "\n");
  std::vector<std::pair<std::string, Tensor>> tensors;
  m.visit_params([&](const std::string& name, Var& p, ParamKind) {
    tensors.emplace_back(name, p.value());
  });
  write_safetensors((fs::path(dir) / "model.safetensors").string(), tensors, {{"format", "pt"}});
}

void save_model(const std::string& dir, LanguageModel& m) {
  write_dir_atomic(dir, [&](const std::string& tmp) { write_model_files(tmp, m); });
}

}  // namespace pf
