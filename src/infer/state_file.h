// Saving and restoring an inference session (KV cache or recurrent state, plus the
// last logits) so generation continues without re-reading the prompt.
#pragma once
#include <map>
#include <string>

#include "models/lm.h"

namespace pf {

// 64-bit FNV-1a lanes over every parameter's name, shape and bits: any changed weight changes
// it, so a state is never continued on other weights.
std::string weights_fingerprint(LanguageModel& model);
// Metadata naming the model a state belongs to (arch, config, weights fingerprint; computed
// when `fingerprint` is empty), and the check that a file's metadata names this model.
std::map<std::string, std::string> state_origin(LanguageModel& model,
                                                const std::string& fingerprint = "");
void check_state_origin(const std::string& path, const std::map<std::string, std::string>& md,
                        LanguageModel& model, const std::string& fingerprint = "");
// Parses a position written as decimal digits; errors name the file.
int64_t parse_state_position(const std::string& path, const std::string& text);

// A safetensors file: state tensors, "last_logits", and metadata naming the model.
void save_session_state(const std::string& path, LanguageModel& model,
                        const InferenceSession& session);
// Checks the file was written by an identical model (architecture and config), then
// restores the session. Errors name the file and the mismatch.
// Refuses a --save-state path that exists and is not a state file we wrote.
void check_state_path(const std::string& path);
void load_session_state(const std::string& path, LanguageModel& model, InferenceSession& session);

}  // namespace pf
