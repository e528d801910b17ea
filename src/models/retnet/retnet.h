// RetNet (Sun et al. 2023): multi-scale retention with parallel, chunkwise and recurrent
// forms, swish output gate, head norm, GLU feed-forward. Tensor names follow
// flash-linear-attention's Hugging Face layout so its published checkpoints load.
#pragma once
#include "models/core/decoder_lm.h"

namespace pf {

StackSpec retnet_stack(const nlohmann::json& config);

}  // namespace pf
