// Next-token sampling: temperature, top-k and nucleus (top-p) filtering.
#pragma once
#include <cstdint>

#include "base/rng.h"

namespace pf {

struct SamplingOptions {
  float temperature = 0.8f;  // 0 = greedy
  int64_t top_k = 0;         // 0 = off
  float top_p = 1.0f;        // 1 = off
};

// Errors name the flag: --temperature in [0, 100], --top-k >= 0, --top-p in (0, 1].
void check_sampling(const SamplingOptions& opt);

// logits: (V). Deterministic for a given rng state.
int32_t sample_token(const float* logits, int64_t V, const SamplingOptions& opt, Rng& rng);

}  // namespace pf
