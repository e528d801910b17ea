// `--weights f32|bf16|int8` for the commands that run a model (generate, eval, info, serve).
#pragma once
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "models/lm.h"

namespace pf::cli {

void add_weights_flag(CLI::App* cmd, std::string& weights);
// Loads a model directory (a quantised one as stored) and converts its matrices when
// `weights` names another format; "" keeps what the directory holds.
std::unique_ptr<LanguageModel> load_model_with_weights(const std::string& dir,
                                                       const std::string& weights);
// Converts a model built in memory (info on shape flags).
void apply_weights_flag(LanguageModel& m, const std::string& weights);

}  // namespace pf::cli
