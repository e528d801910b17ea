#include "io/checkpoint.h"

#include <filesystem>

#include "base/error.h"
#include "io/atomic_file.h"
#include "io/config_json.h"

namespace pf {

namespace fs = std::filesystem;

WeightFiles::WeightFiles(const std::string& dir) : dir_(dir) {
  const fs::path single = fs::path(dir) / "model.safetensors";
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(single)) {
    files_.push_back(std::make_unique<SafetensorsFile>(single.string()));
    return;
  }
  PF_CHECK(fs::exists(index), dir, " has no model.safetensors (nor model.safetensors.index.json)");
  const nlohmann::json j = read_json_file(index.string());
  PF_CHECK(j.contains("weight_map") && j["weight_map"].is_object(), index.string(),
           ": no 'weight_map' object");
  std::map<std::string, size_t> file_index;
  for (const auto& [name, file] : j["weight_map"].items()) {
    PF_CHECK(file.is_string(), index.string(), ": weight_map entry for '", name,
             "' is not a file name");
    const std::string f = file.get<std::string>();
    PF_CHECK(f.find('/') == std::string::npos && f.find("..") == std::string::npos, index.string(),
             ": shard name '", f, "' must be a plain file name");
    auto [it, fresh] = file_index.emplace(f, files_.size());
    if (fresh) files_.push_back(std::make_unique<SafetensorsFile>((fs::path(dir) / f).string()));
    shard_of_[name] = it->second;
  }
}

Tensor WeightFiles::load_f32(const std::string& name, const Shape& expected) const {
  if (shard_of_.empty()) return files_.front()->load_f32(name, expected);
  auto it = shard_of_.find(name);
  PF_CHECK(it != shard_of_.end(), dir_, ": missing tensor '", name,
           "' (not in model.safetensors.index.json)");
  return files_[it->second]->load_f32(name, expected);
}

void load_weights(LanguageModel& m, const WeightFiles& w) {
  m.visit_params([&](const std::string& name, Var& p, ParamKind) {
    p.value().copy_from(w.load_f32(name, p.shape()));
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
  load_weights(*m, WeightFiles(dir));
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
  m.visit_params(
      [&](const std::string& name, Var& p, ParamKind) { tensors.emplace_back(name, p.value()); });
  write_safetensors((fs::path(dir) / "model.safetensors").string(), tensors, {{"format", "pt"}});
}

void save_model(const std::string& dir, LanguageModel& m) {
  write_dir_atomic(dir, [&](const std::string& tmp) { write_model_files(tmp, m); });
}

}  // namespace pf
