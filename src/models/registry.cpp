#include "models/registry.h"

#include <map>

#include "base/error.h"
#include "base/memory_stats.h"
#include "models/hybrid/hybrid.h"
#include "models/mamba/mamba.h"
#include "models/mamba/mamba_config.h"
#include "models/perceiver/perceiver_ar.h"
#include "models/retnet/retnet.h"
#include "models/retnet/retnet_config.h"
#include "models/transformer/transformer.h"

namespace pf {

namespace {
struct Entry {
  std::string model_type;
  StackBuilder build;
  WeightsAdapter adapt;
};
std::map<std::string, Entry>& table() {
  static std::map<std::string, Entry> t;
  return t;
}
// Built-in architectures; a new family adds one line.
void ensure_builtins() {
  static bool done = false;
  if (done) return;
  done = true;
  register_arch("transformer", "llama", transformer_stack);
  register_arch("mamba", "mamba", [](const nlohmann::json& j) { return mamba_stack(j, 1); });
  register_arch("mamba2", "mamba2", [](const nlohmann::json& j) { return mamba_stack(j, 2); });
  register_arch("retnet", "retnet", retnet_stack, retnet_layout_from_weights);
  register_arch("hybrid", "postformer_hybrid", hybrid_stack);
  register_arch("perceiver-ar", "perceiver_ar", perceiver_ar_stack);
}
}  // namespace

void register_arch(const std::string& arch, const std::string& model_type, StackBuilder build,
                   WeightsAdapter adapt) {
  table()[arch] = Entry{model_type, std::move(build), std::move(adapt)};
}

std::string detect_model_type(const nlohmann::json& config) {
  PF_CHECK(config.is_object(), "config must be a JSON object");
  int version = 0;
  if (is_state_spaces_hybrid(config)) return "postformer_hybrid";
  if (is_state_spaces_mamba(config, &version)) return version == 2 ? "mamba2" : "mamba";
  PF_CHECK(config.contains("model_type") && config["model_type"].is_string(),
           "config is missing the key 'model_type'");
  return config["model_type"].get<std::string>();
}

namespace {
const Entry& entry_for(const nlohmann::json& config) {
  ensure_builtins();
  const std::string mt = detect_model_type(config);
  for (auto& [arch, e] : table())
    if (e.model_type == mt) return e;
  fail("unsupported model_type '", mt, "'");
}
}  // namespace

StackSpec stack_spec_for(const nlohmann::json& config) { return entry_for(config).build(config); }

int64_t config_param_count(const nlohmann::json& config) {
  return entry_for(config).build(config).param_count();
}

nlohmann::json canonical_config(const nlohmann::json& config) {
  return entry_for(config).build(config).config;
}

void adapt_config_to_weights(nlohmann::json& config, const std::vector<std::string>& names) {
  const Entry& e = entry_for(config);
  if (e.adapt) e.adapt(config, names);
}

std::unique_ptr<LanguageModel> create_model(const nlohmann::json& config, uint64_t seed) {
  StackSpec spec = entry_for(config).build(config);
  // Checked before anything is allocated: an absurd config fails at once, not minutes later.
  const int64_t params = spec.param_count();
  const int64_t ram = physical_memory_bytes();
  PF_CHECK(ram == 0 || params <= ram / 4, "config describes ", params, " parameters (",
           params / (1 << 28), " GiB of f32 weights), more than this machine's ", ram >> 30,
           " GiB of memory");
  if (spec.make_model) return spec.make_model(spec, seed);
  return std::make_unique<DecoderLM>(std::move(spec), seed);
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

int64_t Model::num_params() {
  int64_t n = 0;
  visit_params([&](const std::string&, Var& p, ParamKind) { n += p.value().numel(); });
  return n;
}

}  // namespace pf
