// Prefill and decode speed of a model, as `compare` and the benchmarks report them.
#pragma once
#include <cstdint>
#include <vector>

#include "models/lm.h"

namespace pf {

// Tokens per second feeding `tokens` into a fresh session in one call (best of `reps`).
double prefill_tokens_per_s(LanguageModel& model, const std::vector<int32_t>& tokens, int reps);

struct DecodeProbe {
  int64_t context = 0;
  double ms_per_token = 0;  // median over the timed steps (sliding-window models: the mean)
  int64_t state_bytes = 0;  // what the model holds at this context (KV cache or state)
};

// Decode latency with `context` tokens already in the session. The session is filled from
// a real prefill of min(context, prefix.size()) tokens; a KV cache is then tiled out to
// `context` positions (decode costs the same whatever the cached values are), so a 16k
// context does not need a 16k prefill. Times `steps` greedy tokens after 4 warm-up ones.
// A sliding-window model (Perceiver AR) is prefilled with the prefix repeated to `context`
// tokens (its prefill only reads the last window), and timed over at least 300 tokens with
// the mean, so its periodic re-encodings are in the number.
DecodeProbe decode_probe(LanguageModel& model, const std::vector<int32_t>& prefix, int64_t context,
                         int64_t steps);

}  // namespace pf
