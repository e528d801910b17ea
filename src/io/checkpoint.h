// Model directories in the Hugging Face layout (config.json + model.safetensors), plus
// the optimizer and trainer state of a training checkpoint. A whole directory is
// written beside the target and swapped in by rename, so a crash never loses the last one.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "models/lm.h"

namespace pf {

// The weights of a model directory: model.safetensors, or the shards named by
// model.safetensors.index.json (as larger Hugging Face exports are split).
class WeightFiles {
 public:
  explicit WeightFiles(const std::string& dir);
  Tensor load_f32(const std::string& name, const Shape& expected) const;

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> shard_of_;  // tensor name -> index into files_ (sharded only)
};

// Copies every parameter from w, checking names and shapes; extra tensors are ignored.
void load_weights(LanguageModel& m, const WeightFiles& w);
// Reads DIR/config.json and DIR/model.safetensors.
std::unique_ptr<LanguageModel> load_model(const std::string& dir);

// Writes a directory atomically: `fill(tmp_dir)` writes the files, then it replaces dir.
void write_dir_atomic(const std::string& dir, const std::function<void(const std::string&)>& fill);
// Writes config.json and model.safetensors of m into an existing directory.
void write_model_files(const std::string& dir, LanguageModel& m);
// A model-only directory, written atomically.
void save_model(const std::string& dir, LanguageModel& m);
// The directory to read: dir itself, or dir.old when a swap was interrupted.
std::string resolve_checkpoint_dir(const std::string& dir);

}  // namespace pf
