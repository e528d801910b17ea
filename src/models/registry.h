// The table that maps an architecture name and a config's model_type to the config adapter
// that builds its StackSpec. Adding an architecture is one line in registry.cpp.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "models/core/decoder_lm.h"

namespace pf {

using StackBuilder = std::function<StackSpec(const nlohmann::json& config)>;
using WeightsAdapter =
    std::function<void(nlohmann::json& config, const std::vector<std::string>& tensor_names)>;

// The StackSpec a language-model config describes (validated), for models that reuse a
// family's block stack without its embedding and head (sequence classifiers).
StackSpec stack_spec_for(const nlohmann::json& config);

void register_arch(const std::string& arch, const std::string& model_type, StackBuilder build,
                   WeightsAdapter adapt = {});

}  // namespace pf
