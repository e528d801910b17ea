#include "infer/speed_probe.h"

#include <algorithm>

#include "base/error.h"
#include "base/timer.h"

namespace pf {

namespace {

int32_t argmax_token(const Tensor& logits) {  // (1, V)
  const float* p = logits.data();
  return static_cast<int32_t>(std::max_element(p, p + logits.numel()) - p);
}

// A KV-cache tensor (n, KV, hd) repeated along its first axis to `len` rows.
Tensor tile_rows(const Tensor& t, int64_t len) {
  const int64_t n = t.size(0);
  Shape shape = t.shape();
  shape[0] = len;
  Tensor out = Tensor::empty(shape);
  const int64_t row = t.numel() / n;
  for (int64_t i = 0; i < len; i += n) {
    const int64_t m = std::min(n, len - i);
    std::copy(t.data(), t.data() + m * row, out.data() + i * row);
  }
  return out;
}

bool is_kv_cache(const std::string& name) {
  return name.rfind("k_cache.", 0) == 0 || name.rfind("v_cache.", 0) == 0;
}

}  // namespace

double prefill_tokens_per_s(LanguageModel& model, const std::vector<int32_t>& tokens, int reps) {
  PF_CHECK(!tokens.empty(), "prefill needs at least one token");
  NoGradScope no_grad;
  double best = 1e300;
  auto session = model.new_session(static_cast<int64_t>(tokens.size()));
  for (int r = 0; r < std::max(1, reps); ++r) {
    session->reset();
    Timer t;
    session->forward(tokens.data(), static_cast<int64_t>(tokens.size()), false);
    best = std::min(best, t.seconds());
  }
  return tokens.size() / best;
}

DecodeProbe decode_probe(LanguageModel& model, const std::vector<int32_t>& prefix, int64_t context,
                         int64_t steps) {
  PF_CHECK(!prefix.empty() && context >= 1 && steps >= 1, "decode probe: bad arguments");
  NoGradScope no_grad;
  constexpr int64_t kWarm = 4;
  const bool sliding = model.stream_eval() && !model.recurrent();
  if (sliding) steps = std::max<int64_t>(steps, 300);
  const int64_t n = std::min<int64_t>(context, static_cast<int64_t>(prefix.size()));
  auto session = model.new_session(context + kWarm + steps);
  if (sliding) {
    std::vector<int32_t> filled(context);
    for (int64_t i = 0; i < context; ++i) filled[i] = prefix[i % prefix.size()];
    session->forward(filled.data(), context, false);
  } else {
    session->forward(prefix.data(), n, false);
  }
  if (!sliding && context > n) {
    auto state = session->export_state();
    for (auto& [name, t] : state)
      if (is_kv_cache(name) && t.dim() >= 1 && t.size(0) == n) t = tile_rows(t, context);
    session->import_state(state, context);
  }
  int32_t tok = argmax_token(session->last_logits());
  std::vector<double> ms;
  for (int64_t i = 0; i < kWarm + steps; ++i) {
    Timer t;
    const Tensor logits = session->forward(&tok, 1, false);
    if (i >= kWarm) ms.push_back(t.seconds() * 1e3);
    tok = argmax_token(logits);
  }
  if (sliding) {
    double sum = 0;
    for (double x : ms) sum += x;
    return {context, sum / ms.size(), model.state_bytes(context)};
  }
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  return {context, ms[ms.size() / 2], model.state_bytes(context)};
}

}  // namespace pf
