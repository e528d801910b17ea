#include "models/compact_weights.h"

#include "base/error.h"

namespace pf {

bool is_compact_candidate(const Var& p, ParamKind kind) {
  return (kind == ParamKind::Matrix || kind == ParamKind::Embedding) && p.value().dim() == 2;
}

int64_t convert_weights(Model& m, WeightFormat f) {
  int64_t n = 0;
  m.visit_params([&](const std::string&, Var& p, ParamKind kind) {
    if (!is_compact_candidate(p, kind)) return;
    const WeightFormat cur = weight_format_of(p.value());
    if (cur == f) return;
    const Tensor wide = cur == WeightFormat::F32 ? p.value() : to_f32(p.value());
    p.value() = convert_weight(wide, f);
    // Compact weights are for inference: a product with them records no gradient.
    if (f != WeightFormat::F32) p.set_requires_grad(false);
    ++n;
  });
  return n;
}

WeightFormat model_weight_format(Model& m) {
  bool found = false;
  WeightFormat f = WeightFormat::F32;
  m.visit_params([&](const std::string&, Var& p, ParamKind kind) {
    if (found || !is_compact_candidate(p, kind)) return;
    f = weight_format_of(p.value());
    found = true;
  });
  return f;
}

int64_t model_weight_bytes(Model& m) {
  int64_t b = 0;
  m.visit_params([&](const std::string&, Var& p, ParamKind) { b += p.value().nbytes(); });
  return b;
}

nlohmann::json quantization_config(Model& m) {
  const WeightFormat f = model_weight_format(m);
  if (f == WeightFormat::F32) return nullptr;
  nlohmann::json q = {{"weights", weight_format_name(f)}, {"method", "postformer"}};
  if (f == WeightFormat::Int8) q["group_size"] = kQ8Group;
  return q;
}

WeightFormat quantization_from_config(const nlohmann::json& cfg, const std::string& where) {
  if (!cfg.is_object() || !cfg.contains("quantization")) return WeightFormat::F32;
  const nlohmann::json& q = cfg["quantization"];
  PF_CHECK(q.is_object() && q.contains("weights") && q["weights"].is_string(), where,
           ": \"quantization\" must be an object with a \"weights\" string");
  const std::string w = q["weights"].get<std::string>();
  PF_CHECK(w == "bf16" || w == "int8", where, ": quantization weights '", w,
           "' is not bf16 or int8");
  return parse_weight_format(w);
}

}  // namespace pf
