// Hybrid models: a per-layer choice of mixer, nothing else changes. Two config forms:
//  - postformer's own (model_type "postformer_hybrid"): a pattern string with one letter per
//    layer (A attention, M Mamba-1, S Mamba-2, R retention; or Nemotron-H's
//    hybrid_override_pattern, where M is Mamba-2 and * attention) or a layer_types list;
//    an optional SwiGLU MLP after every mixer (intermediate_size > 0);
//  - state-spaces MambaLMHeadModel with attn_layer_idx / attn_cfg (mamba2attn), and
//    d_intermediate MLPs (mamba_ssm's GatedMLP).
#pragma once
#include <string>

#include "models/core/decoder_lm.h"

namespace pf {

StackSpec hybrid_stack(const nlohmann::json& config);

// True for a state-spaces config (no model_type) with attention layers or MLPs.
bool is_state_spaces_hybrid(const nlohmann::json& config);
StackSpec state_spaces_hybrid_stack(const nlohmann::json& config);

// The pattern letters of a layer_types entry ("attention", "mamba", "mamba2", "retention").
char layer_letter(const std::string& type);

}  // namespace pf
