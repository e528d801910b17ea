#include "io/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <cmath>
#include <cstring>
#include <set>

#include "base/error.h"
#include "io/atomic_file.h"
#include "io/config_json.h"
#include "models/compact_weights.h"

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

const SafetensorsFile* WeightFiles::file_of(const std::string& name) const {
  if (shard_of_.empty()) return files_.front()->has(name) ? files_.front().get() : nullptr;
  auto it = shard_of_.find(name);
  return it == shard_of_.end() ? nullptr : files_[it->second].get();
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

namespace {
// A matrix of a directory that `quantize` wrote, in its stored format: BF16 as it is, int8
// values with their scales (NAME_scale) as Q8. Checked like f32 weights: shapes, and scales
// that are finite and not negative.
Tensor load_compact(const WeightFiles& w, const std::string& name, const Shape& shape,
                    WeightFormat f, std::set<std::string>& used) {
  const SafetensorsFile* file = w.file_of(name);
  PF_CHECK(file, w.where(name), ": missing tensor '", name, "'");
  const TensorInfo& ti = file->info(name);
  PF_CHECK(ti.shape == shape, file->path(), ": tensor '", name, "' has shape ",
           shape_str(ti.shape), ", expected ", shape_str(shape));
  if (f == WeightFormat::BF16) {
    PF_CHECK(ti.dtype == DType::BF16, file->path(), ": tensor '", name, "' is ",
             dtype_name(ti.dtype), ", but config.json says the weights are bf16");
    Tensor t = file->load_raw(name);
    const int64_t bad = first_nonfinite(to_f32(t));
    PF_CHECK(bad < 0, file->path(), ": tensor '", name, "' holds a non-finite value at element ",
             bad);
    return t;
  }
  PF_CHECK(ti.dtype == DType::I8, file->path(), ": tensor '", name, "' is ", dtype_name(ti.dtype),
           ", but config.json says the weights are int8");
  const std::string sname = name + kScaleSuffix;
  const SafetensorsFile* sfile = w.file_of(sname);
  PF_CHECK(sfile, w.where(name), ": int8 tensor '", name, "' has no scales ('", sname, "')");
  const TensorInfo& si = sfile->info(sname);
  const int64_t K = shape[1];
  PF_CHECK(si.shape.size() == 2 && si.shape[0] == shape[0] && si.shape[1] > 0 &&
               K % si.shape[1] == 0,
           sfile->path(), ": scales '", sname, "' have shape ", shape_str(si.shape),
           ", which does not divide the rows of ", shape_str(shape), " into groups");
  const int64_t G = K / si.shape[1];
  PF_CHECK(G % 16 == 0 || G == K, sfile->path(), ": '", sname, "' gives groups of ", G,
           " inputs; int8 groups must be a multiple of 16 or a whole row");
  const Tensor scales = sfile->load_f32(sname);
  const float* sp = scales.data();
  for (int64_t i = 0; i < scales.numel(); ++i)
    PF_CHECK(std::isfinite(sp[i]) && sp[i] >= 0.0f, sfile->path(), ": scale ", i, " of '", sname,
             "' is ", sp[i], " (scales must be finite and not negative)");
  const Tensor q = file->load_raw(name);
  Tensor t = Tensor::empty_typed(shape, DType::Q8, G);
  std::memcpy(t.raw(), q.raw(), static_cast<size_t>(q.numel()));
  std::memcpy(t.q8_scales(), sp, scales.numel() * sizeof(float));
  used.insert(sname);
  return t;
}
}  // namespace

void load_weights(Model& m, const WeightFiles& w, WeightFormat stored) {
  std::set<std::string> used;
  Tensor embedding;  // for comparing a stored lm_head of a tied model
  m.visit_params([&](const std::string& name, Var& p, ParamKind kind) {
    if (stored != WeightFormat::F32 && is_compact_candidate(p, kind)) {
      p.value() = load_compact(w, name, p.shape(), stored, used);
      used.insert(name);
      if (kind == ParamKind::Embedding) embedding = p.value();
      return;
    }
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
  load_weights(*m, weights, quantization_from_config(cfg, cfg_path));
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
  nlohmann::json cfg = m.config_json();
  const nlohmann::json q = quantization_config(m);
  if (!q.is_null()) cfg["quantization"] = q;
  write_file_atomic((fs::path(dir) / "config.json").string(), cfg.dump(2) + "\n");
  std::vector<std::pair<std::string, Tensor>> tensors;
  m.visit_params([&](const std::string& name, Var& p, ParamKind) {
    const Tensor& t = p.value();
    if (t.dtype() != DType::Q8) {
      tensors.emplace_back(name, t);
      return;
    }
    // int8 values and their scales as two tensors (safetensors has no grouped dtype).
    Tensor q = Tensor::empty_typed(t.shape(), DType::I8);
    std::memcpy(q.raw(), t.raw(), static_cast<size_t>(t.numel()));
    Tensor s = Tensor::empty({t.size(0), t.size(1) / t.group()});
    std::memcpy(s.data(), t.q8_scales(), s.numel() * sizeof(float));
    tensors.emplace_back(name, q);
    tensors.emplace_back(name + kScaleSuffix, s);
  });
  write_safetensors((fs::path(dir) / "model.safetensors").string(), tensors, {{"format", "pt"}});
}

void save_model(const std::string& dir, Model& m) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  PF_CHECK(!ec, "cannot create ", dir, ": ", ec.message());
  write_model_files(dir, m);
}

}  // namespace pf
