// Mamba (selective SSM) and Mamba-2 (SSD) language models: embedding, pre-norm residual
// blocks around a Mamba mixer, final RMSNorm, tied head. O(1) inference state.
#pragma once
#include "models/core/decoder_lm.h"
#include "models/mamba/mamba_config.h"
#include "models/mixers/mamba.h"

namespace pf {

// version 1 = Mamba, 2 = Mamba-2; either published layout (see mamba_config.h).
StackSpec mamba_stack(const nlohmann::json& config, int version);
// The mixer settings a Mamba config gives every Mamba layer (also a hybrid's).
Mamba1Spec mamba1_spec(const MambaConfig& c);
Mamba2Spec mamba2_spec(const MambaConfig& c);

}  // namespace pf
