// Model directories in the Hugging Face layout (config.json + model.safetensors), plus
// the optimizer and trainer state of a training checkpoint. Training runs keep their
// checkpoints in a RunDir (io/run_dir.h), which survives any sequence of crashes.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/run_dir.h"
#include "io/safetensors.h"
#include "models/classify/classifier.h"
#include "models/lm.h"
#include "tensor/quantize.h"

namespace pf {

// The weights of a model directory: model.safetensors, or the shards named by
// model.safetensors.index.json (as larger Hugging Face exports are split).
class WeightFiles {
 public:
  explicit WeightFiles(const std::string& dir);
  Tensor load_f32(const std::string& name, const Shape& expected) const;
  Tensor load_f32(const std::string& name) const;
  std::vector<std::string> names() const;                   // every tensor in every file, sorted
  int64_t total_elements() const;                           // summed over all tensors
  const std::string& where(const std::string& name) const;  // the file holding it
  const SafetensorsFile* file_of(const std::string& name) const;  // null when absent

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> shard_of_;  // tensor name -> index into files_ (sharded only)
};

// Copies every parameter from w, checking names, shapes and that every value is finite.
// A tensor the model does not use is an error (a config with fewer layers than the
// weights), except buffers the published exports carry (rotary inv_freq, a tied lm_head
// equal to the embedding). `stored` is the format config.json's "quantization" names: the
// matrices are then kept as stored (BF16, or int8 + scales as Q8) rather than widened.
void load_weights(Model& m, const WeightFiles& w, WeightFormat stored = WeightFormat::F32);
// Reads DIR/config.json and DIR/model.safetensors.
std::unique_ptr<LanguageModel> load_model(const std::string& dir);

// A classifier directory (config.json with a classifier model_type, model.safetensors).
std::unique_ptr<Classifier> load_classifier(const std::string& dir);

// Writes config.json and model.safetensors of m into an existing directory.
void write_model_files(const std::string& dir, Model& m);
// A model-only directory (created if needed); each file is replaced atomically.
void save_model(const std::string& dir, Model& m);

}  // namespace pf
