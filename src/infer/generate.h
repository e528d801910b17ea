// Streaming generation on an inference session, and log-likelihood evaluation.
#pragma once
#include <functional>
#include <vector>

#include "infer/sampler.h"
#include "models/lm.h"

namespace pf {

// Prefills the prompt, then samples up to max_new tokens, calling on_token as each is
// produced. Stops early when the session is full. Returns the generated ids.
std::vector<int32_t> generate(InferenceSession& session, const std::vector<int32_t>& prompt,
                              int64_t max_new, const SamplingOptions& opt, uint64_t seed,
                              const std::function<void(int32_t)>& on_token);

struct EvalResult {
  double total_nats = 0;
  int64_t predicted = 0;  // number of predicted tokens
  double loss() const { return predicted ? total_nats / predicted : 0; }
};

// Scores ids in windows of ctx tokens (each window restarts the context). logprobs,
// when given, receives log p(ids[i+1] | ids[..i]) for every i (natural log).
EvalResult evaluate_tokens(LanguageModel& m, const std::vector<int32_t>& ids, int64_t ctx,
                           std::vector<float>* logprobs);

}  // namespace pf
