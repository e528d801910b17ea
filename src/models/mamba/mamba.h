// Mamba (selective SSM) and Mamba-2 (SSD) language models: embedding, pre-norm
// residual blocks around a Mixer, final RMSNorm, tied head. O(1) inference state.
#pragma once
#include <memory>

#include "models/lm.h"

namespace pf {

std::unique_ptr<LanguageModel> make_mamba(const nlohmann::json& config, uint64_t seed);
std::unique_ptr<LanguageModel> make_mamba2(const nlohmann::json& config, uint64_t seed);

}  // namespace pf
