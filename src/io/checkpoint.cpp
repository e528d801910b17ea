#include "io/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <set>

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
  PF_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(), index.string(),
           ": no 'weight_map' object");
  PF_CHECK(!j["weight_map"].empty(), index.string(), ": 'weight_map' names no tensors");
  std::map<std::string, size_t> file_index;
  for (const auto& [name, file] : j["weight_map"].items()) {
    PF_CHECK(file.is_string(), index.string(), ": weight_map entry for '", name,
             "' is not a file name");
    const std::string f = file.get<std::string>();
    PF_CHECK(!f.empty() && f != "." && f.find('/') == std::string::npos &&
                 f.find("..") == std::string::npos,
             index.string(), ": shard name '", f, "' must be a plain file name");
    auto [it, fresh] = file_index.emplace(f, files_.size());
    if (fresh) files_.push_back(std::make_unique<SafetensorsFile>((fs::path(dir) / f).string()));
    PF_CHECK(files_[it->second]->has(name), index.string(), ": weight_map puts '", name, "' in ", f,
             ", which does not hold it");
    shard_of_[name] = it->second;
  }
  // A tensor in a shard that the index does not list would be silently ignored.
  for (const auto& file : files_)
    for (const std::string& name : file->names())
      PF_CHECK(shard_of_.count(name) && files_[shard_of_[name]].get() == file.get(), file->path(),
               ": tensor '", name, "' is not listed for this shard in ", index.string());
}

Tensor WeightFiles::load_f32(const std::string& name) const {
  if (shard_of_.empty()) return files_.front()->load_f32(name);
  auto it = shard_of_.find(name);
  PF_CHECK(it != shard_of_.end(), dir_, ": missing tensor '", name, "'");
  return files_[it->second]->load_f32(name);
}

std::vector<std::string> WeightFiles::names() const {
  std::vector<std::string> out;
  for (const auto& f : files_)
    for (const std::string& n : f->names()) out.push_back(n);
  std::sort(out.begin(), out.end());
  return out;
}

int64_t WeightFiles::total_elements() const {
  int64_t n = 0;
  for (const auto& f : files_)
    for (const std::string& name : f->names()) n += shape_numel(f->info(name).shape);
  return n;
}

const std::string& WeightFiles::where(const std::string& name) const {
  if (shard_of_.empty()) return files_.front()->path();
  auto it = shard_of_.find(name);
  return it == shard_of_.end() ? dir_ : files_[it->second]->path();
}

Tensor WeightFiles::load_f32(const std::string& name, const Shape& expected) const {
  if (shard_of_.empty()) return files_.front()->load_f32(name, expected);
  auto it = shard_of_.find(name);
  PF_CHECK(it != shard_of_.end(), dir_, ": missing tensor '", name,
           "' (not in model.safetensors.index.json)");
  return files_[it->second]->load_f32(name, expected);
}

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

void load_weights(Model& m, const WeightFiles& w) {
  std::set<std::string> used;
  Tensor embedding;  // for comparing a stored lm_head of a tied model
  m.visit_params([&](const std::string& name, Var& p, ParamKind kind) {
    Tensor t = w.load_f32(name, p.shape());
    const int64_t bad = first_nonfinite(t);
    PF_CHECK(bad < 0, w.where(name), ": tensor '", name, "' holds ", t.data()[bad], " at element ",
             bad, " (weights must be finite)");
    p.value().copy_from(t);
    used.insert(name);
    if (kind == ParamKind::Embedding) embedding = p.value();
  });
  for (const std::string& name : w.names()) {
    if (used.count(name) || ends_with(name, ".rotary_emb.inv_freq")) continue;
    if (name == "lm_head.weight" && embedding.defined()) {
      // Exports of tied models may store the head too; it must then be the embedding.
      const Tensor head = w.load_f32(name);
      PF_CHECK(head.shape() == embedding.shape() && head.to_vector() == embedding.to_vector(),
               w.where(name),
               ": lm_head.weight differs from the embedding, but the config ties "
               "them (set tie_word_embeddings / tie_embeddings to false)");
      continue;
    }
    fail(w.where(name), ": unexpected tensor '", name,
         "' (the config does not describe it: does it have fewer layers than the weights?)");
  }
}

namespace {
std::unique_ptr<LanguageModel> load_model_from(const std::string& dir);
}  // namespace

std::unique_ptr<LanguageModel> load_model(const std::string& dir_in) {
  const std::string dir = resolve_checkpoint_dir(dir_in);
  try {
    return load_model_from(dir);
  } catch (const Error&) {
    // A running trainer may have replaced the checkpoint between resolving and reading it.
    if (resolve_checkpoint_dir(dir_in) == dir) throw;
    return load_model_from(resolve_checkpoint_dir(dir_in));
  }
}

namespace {
std::unique_ptr<LanguageModel> load_model_from(const std::string& dir) {
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  nlohmann::json cfg = read_json_file(cfg_path);
  int64_t params = 0;
  try {
    params = config_param_count(cfg);
  } catch (const Error& e) {
    fail(cfg_path, ": ", e.what());
  }
  // Before building: a config asking for far more than the files hold cannot match them
  // (a near miss is left to load_weights, which names the missing tensor).
  const WeightFiles weights(dir);
  PF_CHECK(params / 2 <= weights.total_elements(), cfg_path, ": describes ", params,
           " parameters but the weights in ", dir, " hold only ", weights.total_elements(),
           " values; the config does not match the checkpoint");
  std::unique_ptr<LanguageModel> m;
  try {
    adapt_config_to_weights(cfg, weights.names());  // layouts only the tensor names tell
    m = create_model(cfg, 0);
  } catch (const Error& e) {
    fail(cfg_path, ": ", e.what());
  }
  load_weights(*m, weights);
  return m;
}
}  // namespace

std::unique_ptr<Classifier> load_classifier(const std::string& dir_in) {
  const std::string dir = resolve_checkpoint_dir(dir_in);
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  const nlohmann::json cfg = read_json_file(cfg_path);
  const WeightFiles weights(dir);
  std::unique_ptr<Classifier> m;
  try {
    m = create_classifier(cfg, 0);
  } catch (const Error& e) {
    fail(cfg_path, ": ", e.what());
  }
  load_weights(*m, weights);
  return m;
}

void write_model_files(const std::string& dir, Model& m) {
  write_file_atomic((fs::path(dir) / "config.json").string(), m.config_json().dump(2) + "\n");
  std::vector<std::pair<std::string, Tensor>> tensors;
  m.visit_params(
      [&](const std::string& name, Var& p, ParamKind) { tensors.emplace_back(name, p.value()); });
  write_safetensors((fs::path(dir) / "model.safetensors").string(), tensors, {{"format", "pt"}});
}

void save_model(const std::string& dir, Model& m) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  PF_CHECK(!ec, "cannot create ", dir, ": ", ec.message());
  write_model_files(dir, m);
}

}  // namespace pf
