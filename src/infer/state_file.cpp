#include "infer/state_file.h"

#include <filesystem>

#include "base/error.h"
#include "io/safetensors.h"

namespace pf {

namespace {
constexpr const char* kFormat = "postformer-state-v1";
}

void save_session_state(const std::string& path, LanguageModel& model,
                        const InferenceSession& session) {
  PF_CHECK(session.last_logits().defined(), "nothing to save: the session has seen no tokens");
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (auto& [name, t] : session.export_state()) tensors.emplace_back("state." + name, t);
  tensors.emplace_back("last_logits", session.last_logits());
  write_safetensors(path, tensors,
                    {{"format", kFormat},
                     {"arch", model.arch()},
                     {"config", model.config_json().dump()},
                     {"position", std::to_string(session.position())}});
}

void load_session_state(const std::string& path, LanguageModel& model, InferenceSession& session) {
  PF_CHECK(std::filesystem::exists(path), "state file ", path, " does not exist");
  SafetensorsFile f(path);
  const auto& md = f.metadata();
  auto get = [&](const char* key) {
    auto it = md.find(key);
    PF_CHECK(it != md.end(), path, ": not a postformer state file (no '", key, "' metadata)");
    return it->second;
  };
  PF_CHECK(get("format") == kFormat, path, ": unsupported state format '", get("format"), "'");
  PF_CHECK(get("arch") == model.arch(), path, ": state of a '", get("arch"),
           "' model cannot continue a '", model.arch(), "' model");
  PF_CHECK(get("config") == model.config_json().dump(), path,
           ": state was saved by a model with a different config");
  int64_t position = 0;
  try {
    position = std::stoll(get("position"));
  } catch (...) {
    fail(path, ": bad position '", get("position"), "'");
  }
  std::vector<std::pair<std::string, Tensor>> state;
  for (auto& [name, t] : session.export_state()) {
    (void)t;
    state.emplace_back(name, f.load_f32("state." + name));
  }
  session.import_state(state, position);
  session.set_last_logits(f.load_f32("last_logits", {1, model.vocab_size()}));
}

}  // namespace pf
