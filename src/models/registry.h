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

void register_arch(const std::string& arch, const std::string& model_type, StackBuilder build,
                   WeightsAdapter adapt = {});

}  // namespace pf
