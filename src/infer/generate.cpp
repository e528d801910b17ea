#include "infer/generate.h"

#include <algorithm>

#include "autograd/tape.h"
#include "base/checks.h"
#include "base/error.h"
#include "kernels/cpu/xent.h"

namespace pf {

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
    const int64_t V = logits.size(1);
    PF_CHECK(first_nonfinite(logits) < 0, "the model produced non-finite logits at position ",
             session.position(), " (its weights overflow the computation)");
    if (opt.valid_vocab > 0 && opt.valid_vocab < V)
      for (int64_t j = opt.valid_vocab; j < V; ++j) logits.data()[j] = -1e30f;
    for (int32_t j : opt.banned_ids)
      if (j >= 0 && j < V) logits.data()[j] = -1e30f;
    const int32_t tok = sample_token(logits.data(), V, opt.sampling, rng);
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
                           std::vector<float>* logprobs) {
  PF_CHECK(ids.size() >= 2, "evaluation needs at least 2 tokens, got ", ids.size());
  PF_CHECK(ctx > 0, "context must be positive");
  NoGradScope no_grad;
  EvalResult r;
  const int64_t n = static_cast<int64_t>(ids.size());
  const int64_t V = m.vocab_size();
  for (int32_t id : ids)
    PF_CHECK(id >= 0 && id < V, "token id ", id, " is outside the model's vocabulary of ", V);
  if (logprobs) logprobs->assign(n - 1, 0.0f);
  // Recurrent models stream the whole text through one session (constant memory, full
  // context), Perceiver AR slides its window the way generation does; the others score
  // independent windows of ctx tokens.
  std::unique_ptr<InferenceSession> session;
  if (m.stream_eval()) session = m.new_session(n);
  for (int64_t w = 0; w < n - 1; w += ctx) {
    const int64_t T = std::min(ctx, n - 1 - w);
    std::vector<int32_t> in(ids.begin() + w, ids.begin() + w + T);
    Tensor logits = session ? session->forward(in.data(), T, true)
                            : m.forward(in, 1, T, ForwardOptions{}).value();  // (T, V)
    Tensor lp = Tensor::empty({T, V});
    cpu::log_softmax(T, V, logits.data(), lp.data());
    for (int64_t t = 0; t < T; ++t) {
      const float v = lp.data()[t * V + ids[w + t + 1]];
      r.total_nats -= v;
      if (logprobs) (*logprobs)[w + t] = v;
    }
    r.predicted += T;
  }
  return r;
}

}  // namespace pf
