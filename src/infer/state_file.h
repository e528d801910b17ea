// Saving and restoring an inference session (KV cache or recurrent state, plus the
// last logits) so generation continues without re-reading the prompt.
#pragma once
#include <string>

#include "models/lm.h"

namespace pf {

// A safetensors file: state tensors, "last_logits", and metadata naming the model.
void save_session_state(const std::string& path, LanguageModel& model,
                        const InferenceSession& session);
// Checks the file was written by an identical model (architecture and config), then
// restores the session. Errors name the file and the mismatch.
// Refuses a --save-state path that exists and is not a state file we wrote.
void check_state_path(const std::string& path);
void load_session_state(const std::string& path, LanguageModel& model, InferenceSession& session);

}  // namespace pf
