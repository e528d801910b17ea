#include "infer/generate.h"

#include <algorithm>
#include <cmath>

#include "autograd/tape.h"
#include "base/checks.h"
#include "base/error.h"
#include "kernels/cpu/xent.h"

namespace pf {

int32_t pick_next_token(float* logits, int64_t V, const GenerateOptions& opt, Rng& rng,
                        int64_t position) {
  for (int64_t j = 0; j < V; ++j)
    PF_CHECK(std::isfinite(logits[j]), "the model produced non-finite logits at position ",
             position, " (its weights overflow the computation)");
  if (opt.valid_vocab > 0 && opt.valid_vocab < V)
    for (int64_t j = opt.valid_vocab; j < V; ++j) logits[j] = -1e30f;
  for (int32_t j : opt.banned_ids)
    if (j >= 0 && j < V) logits[j] = -1e30f;
  return sample_token(logits, V, opt.sampling, rng);
}

std::vector<int32_t> generate(InferenceSession& session, const std::vector<int32_t>& prompt,
                              const GenerateOptions& opt,
                              const std::function<void(int32_t)>& on_token) {
  check_range("--max-tokens", opt.max_new, 0, int64_t{1} << 40);
  check_sampling(opt.sampling);
  PF_CHECK(!prompt.empty() || session.last_logits().defined(),
           "generate: the prompt is empty and there is no saved state to continue from");
  PF_CHECK(session.position() + static_cast<int64_t>(prompt.size()) <= session.capacity(),
           "prompt of ", prompt.size(), " tokens exceeds the context of ", session.capacity());
  Rng rng(opt.seed, 7);
  if (!prompt.empty()) session.forward(prompt.data(), static_cast<int64_t>(prompt.size()), false);
  std::vector<int32_t> out;
  for (int64_t i = 0; i < opt.max_new; ++i) {
    Tensor logits = session.last_logits().clone();  // (1, V)
    const int32_t tok = pick_next_token(logits.data(), logits.size(1), opt, rng, session.position());
    out.push_back(tok);
    if (on_token) on_token(tok);
    const bool stop =
        std::find(opt.stop_ids.begin(), opt.stop_ids.end(), tok) != opt.stop_ids.end();
    const bool last = i + 1 == opt.max_new || stop || session.position() >= session.capacity();
    if (last && !opt.feed_last) break;
    if (session.position() >= session.capacity()) break;
    session.forward(&tok, 1, false);
    if (last) break;
  }
  return out;
}

EvalResult evaluate_tokens(LanguageModel& m, const std::vector<int32_t>& ids, int64_t ctx,
                           std::vector<float>* logprobs, int64_t stride) {
  PF_CHECK(ids.size() >= 2, "evaluation needs at least 2 tokens, got ", ids.size());
  PF_CHECK(ctx > 0, "context must be positive");
  PF_CHECK(stride >= 0 && stride <= ctx, "stride ", stride, " must be in [1, context ", ctx, "]");
  if (stride == 0) stride = ctx;
  NoGradScope no_grad;
  EvalResult r;
  const int64_t n = static_cast<int64_t>(ids.size());
  const int64_t V = m.vocab_size();
  for (int32_t id : ids)
    PF_CHECK(id >= 0 && id < V, "token id ", id, " is outside the model's vocabulary of ", V);
  if (logprobs) logprobs->assign(n - 1, 0.0f);
  // Adds the log-probabilities of rows (T, V) predicting ids[first + 1 ..].
  auto score = [&](const Tensor& logits, int64_t first) {
    const int64_t T = logits.size(0);
    Tensor lp = Tensor::empty({T, V});
    cpu::log_softmax(T, V, logits.data(), lp.data());
    for (int64_t t = 0; t < T; ++t) {
      const float v = lp.data()[t * V + ids[first + t + 1]];
      r.total_nats -= v;
      if (logprobs) (*logprobs)[first + t] = v;
    }
    r.predicted += T;
  };
  if (m.stream_eval()) {
    // Recurrent models stream the whole text through one session (constant memory, full
    // context); Perceiver AR's session slides its window the way generation does.
    auto session = m.new_session(n);
    for (int64_t w = 0; w < n - 1; w += ctx) {
      const int64_t T = std::min(ctx, n - 1 - w);
      score(session->forward(ids.data() + w, T, true), w);
    }
    return r;
  }
  // The others: the first window scores all its positions; each next one ends `stride`
  // tokens later and scores only those, with up to ctx - stride tokens of context before.
  for (int64_t s = 0; s < n - 1;) {
    const int64_t e = std::min(n - 1, s == 0 ? ctx : s + stride);
    const int64_t w = std::max<int64_t>(0, e - ctx), T = e - w;
    std::vector<int32_t> in(ids.begin() + w, ids.begin() + e);
    const Tensor logits = m.forward(in, 1, T, ForwardOptions{}).value();  // (T, V)
    score(logits.slice(0, s - w, T).contiguous(), s);
    s = e;
  }
  return r;
}

}  // namespace pf
