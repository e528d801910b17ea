// RetNet multi-scale retention (Sun et al. 2023) with the output gate and head norm:
// out_proj(SiLU(g) * headnorm(retention(q, k, v))). Two variants: torchscale's (k scaled,
// rotate-every-two RoPE with linspace frequencies, normalised retention, weightless head
// norm) and flash-linear-attention's (q scaled, rotate-half RoPE, un-normalised retention,
// head norm with a weight). State per head: (dk, dv), whatever the context.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/core/mixer.h"

namespace pf {

enum class RetentionVariant { Torchscale, Fla };
// How a prompt chunk runs at inference (decode rows always use the recurrent step).
enum class RetentionPrefill { Parallel, Chunkwise, Recurrent };

struct RetentionSpec {
  RetentionVariant variant = RetentionVariant::Torchscale;
  int64_t d = 0, heads = 1, head_k = 0, head_v = 0;
  std::vector<float> gammas;  // (heads) decays in (0, 1)
  int64_t chunk = 64;         // chunkwise form's chunk length
  RetentionPrefill prefill = RetentionPrefill::Chunkwise;
  bool parallel_training = false;  // train with the parallel form instead of chunkwise
  double head_norm_eps = 1e-6;
  std::string head_norm_name;  // empty: no learned head-norm weight
  double rope_theta = 10000.0;
  float init_std = 0.02f, out_std = 0.02f;
  int64_t param_count() const {
    return 2 * heads * head_k * d + 3 * heads * head_v * d + (head_norm_name.empty() ? 0 : head_v);
  }
};

std::unique_ptr<Mixer> make_retention(const RetentionSpec& s, Rng& rng);

// Per-head decays by name: "torchscale" 1 - 2^(-5-h); "paper"
// 1 - exp(linspace(log 1/32, log 1/512, heads)).
std::vector<float> retention_decays(const std::string& scheme, int64_t heads);

}  // namespace pf

namespace pf {
// A config's decay setting: "torchscale", "paper" or a list of one decay in (0, 1) per head.
// Errors name `key`.
std::vector<float> parse_retention_decay(const nlohmann::json& value, int64_t heads,
                                         const std::string& key);
// "chunkwise", "parallel" or "recurrent"; errors name `key`.
RetentionPrefill parse_retention_prefill(const std::string& name, const std::string& key);
const char* retention_prefill_name(RetentionPrefill p);
}  // namespace pf
