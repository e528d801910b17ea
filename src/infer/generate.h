// Streaming generation on an inference session, and log-likelihood evaluation.
#pragma once
#include <functional>
#include <vector>

#include "infer/sampler.h"
#include "models/lm.h"

namespace pf {

struct GenerateOptions {
  int64_t max_new = 200;
  SamplingOptions sampling;
  uint64_t seed = 1;
  int64_t valid_vocab = 0;          // ids >= this are never sampled (padded vocab); 0 = all
  std::vector<int32_t> stop_ids;    // generation ends after producing one of these
  std::vector<int32_t> banned_ids;  // never sampled (ids the tokenizer cannot decode)
  bool feed_last = false;           // also feed the final token, so the state covers it
};

// One sampling step on logits (V) at `position`: errors on non-finite logits, masks the ids
// `opt` forbids (padded vocabulary, banned ids) in place, then samples with opt.sampling.
int32_t pick_next_token(float* logits, int64_t V, const GenerateOptions& opt, Rng& rng,
                        int64_t position);

// Prefills the prompt (which may be empty when the session already has logits, e.g.
// after load_session_state), then samples up to max_new tokens, calling on_token as
// each is produced. Stops early at a stop id or when the session is full.
std::vector<int32_t> generate(InferenceSession& session, const std::vector<int32_t>& prompt,
                              const GenerateOptions& opt,
                              const std::function<void(int32_t)>& on_token);

struct EvalResult {
  double total_nats = 0;
  int64_t predicted = 0;  // number of predicted tokens
  double loss() const { return predicted ? total_nats / predicted : 0; }
};

// Scores ids in windows of ctx tokens. Each window restarts the context, except for
// streaming models (recurrent state, Perceiver AR's sliding window), whose state carries on.
// With a stride below ctx, the next window ends `stride` tokens after the last and scores
// only those (sliding-window evaluation: every token after the first window has at least
// ctx - stride tokens of context). logprobs, when given, receives log p(ids[i+1] | ids[..i])
// for every i (natural log).
EvalResult evaluate_tokens(LanguageModel& m, const std::vector<int32_t>& ids, int64_t ctx,
                           std::vector<float>* logprobs, int64_t stride = 0);

}  // namespace pf
