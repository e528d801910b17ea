#include <map>

#include "base/error.h"
#include "models/lm.h"
#include "models/mamba/mamba.h"
#include "models/mamba/mamba_config.h"
#include "models/retnet/retnet.h"
#include "models/transformer/transformer.h"

namespace pf {

namespace {
struct Entry {
  std::string model_type;
  ModelFactory factory;
};
std::map<std::string, Entry>& table() {
  static std::map<std::string, Entry> t;
  return t;
}
// Built-in architectures; later families add one line each.
void ensure_builtins() {
  static bool done = false;
  if (done) return;
  done = true;
  register_arch("transformer", "llama", make_transformer);
  register_arch("mamba", "mamba", make_mamba);
  register_arch("mamba2", "mamba2", make_mamba2);
  register_arch("retnet", "retnet", make_retnet);
}
}  // namespace

void register_arch(const std::string& arch, const std::string& model_type, ModelFactory f) {
  table()[arch] = Entry{model_type, std::move(f)};
}

std::string detect_model_type(const nlohmann::json& config) {
  PF_CHECK(config.is_object(), "config must be a JSON object");
  int version = 0;
  if (is_state_spaces_mamba(config, &version)) return version == 2 ? "mamba2" : "mamba";
  PF_CHECK(config.contains("model_type") && config["model_type"].is_string(),
           "config is missing the key 'model_type'");
  return config["model_type"].get<std::string>();
}

std::unique_ptr<LanguageModel> create_model(const nlohmann::json& config, uint64_t seed) {
  ensure_builtins();
  const std::string mt = detect_model_type(config);
  for (auto& [arch, e] : table())
    if (e.model_type == mt) return e.factory(config, seed);
  fail("unsupported model_type '", mt, "'");
}

std::string model_type_for_arch(const std::string& arch) {
  ensure_builtins();
  auto it = table().find(arch);
  if (it == table().end()) {
    std::string known;
    for (auto& [a, e] : table()) known += (known.empty() ? "" : ", ") + a;
    fail("unknown architecture '", arch, "' (known: ", known, ")");
  }
  return it->second.model_type;
}

std::vector<std::string> registered_archs() {
  ensure_builtins();
  std::vector<std::string> v;
  for (auto& [a, e] : table()) v.push_back(a);
  return v;
}

int64_t LanguageModel::num_params() {
  int64_t n = 0;
  visit_params([&](const std::string&, Var& p, ParamKind) { n += p.value().numel(); });
  return n;
}

}  // namespace pf
