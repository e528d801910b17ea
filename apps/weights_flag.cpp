#include "apps/weights_flag.h"

#include "io/checkpoint.h"
#include "models/compact_weights.h"

namespace pf::cli {

void add_weights_flag(CLI::App* cmd, std::string& weights) {
  cmd->add_option("--weights", weights,
                  "Weight format for inference: f32, bf16 or int8 (default: as stored; "
                  "norms, biases and recurrent state stay f32)")
      ->check(CLI::IsMember({"f32", "bf16", "int8"}));
}

void apply_weights_flag(LanguageModel& m, const std::string& weights) {
  if (weights.empty()) return;
  convert_weights(m, parse_weight_format(weights));
}

std::unique_ptr<LanguageModel> load_model_with_weights(const std::string& dir,
                                                       const std::string& weights) {
  auto m = load_model(dir);
  apply_weights_flag(*m, weights);
  return m;
}

}  // namespace pf::cli
