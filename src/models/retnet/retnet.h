// RetNet (Sun et al. 2023): multi-scale retention with parallel, chunkwise and recurrent
// forms, swish output gate, head norm, GLU feed-forward. Tensor names follow
// flash-linear-attention's Hugging Face layout so its published checkpoints load.
#pragma once
#include <memory>

#include "models/lm.h"

namespace pf {

std::unique_ptr<LanguageModel> make_retnet(const nlohmann::json& config, uint64_t seed);

}  // namespace pf
