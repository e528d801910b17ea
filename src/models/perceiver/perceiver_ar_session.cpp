// Cached generation for Perceiver AR, after google-research/perceiver-ar's sample_utils.py:
// caching lets latents depend on more earlier latents than training ever showed, so when
// the latent cache is full the reference re-encodes: it runs the model afresh with half the
// latents and then grows them again one token at a time.
//
// Here the schedule is a function of the position alone (so a state does not depend on how
// its tokens were fed). Cycle 0 holds positions [0, M) as latents over the inputs [0, t].
// Each later cycle starts at a token t_r, re-encodes the H = M/2 latents [t_r-H+1, t_r] and
// then adds one latent per token until there are M. Its window of inputs starts where the
// last token of the cycle sees exactly L of them. Within a cycle every logit therefore
// equals a full forward over that cycle's window with the cycle's latents (the test checks
// this at every step), and at a cycle's last token that is exactly the training shape.
//
// The inputs' keys and values depend only on their token and absolute position, so they are
// cached once and slide with the window; a re-encoding recomputes just H latents. A token
// costs O(L) in the cross layer plus O(layers * M) in the latent layers, and about as much
// again amortised for the re-encodings.
#include <algorithm>
#include <cstring>

#include "autograd/tape.h"
#include "base/error.h"
#include "models/perceiver/perceiver_ar.h"

namespace pf {

namespace {

struct Cycle {
  int64_t index = 0;
  int64_t start = 0;  // first new token
  int64_t lat = 0;    // first latent
  int64_t win = 0;    // first input of the window
  int64_t end = 0;    // first position of the next cycle
};

Cycle cycle_of(int64_t t, int64_t L, int64_t M) {
  if (t < M) return {0, 0, 0, 0, M};
  const int64_t H = std::max<int64_t>(1, M / 2), P = M - H + 1;  // P: new tokens per cycle
  const int64_t c = 1 + (t - M) / P, tr = M + (c - 1) * P;
  const int64_t lat = tr - H + 1;
  return {c, tr, lat, std::max<int64_t>(0, lat + M - L), tr + P};
}

constexpr int64_t kChunk = 512;  // rows per cached forward (bounds activations)

class PerceiverArSession : public InferenceSession {
 public:
  // The input cache starts at min(L, hint) rows and grows to at most L as tokens arrive.
  PerceiverArSession(PerceiverAR& m, int64_t hint)
      : m_(m), L_(m.config().context_length), M_(m.config().num_latents), kvd_(m.kv_width()) {
    reserve(std::min(L_, std::max<int64_t>(hint, 64)));
    pool_ = m.new_latent_pool();
  }

  Tensor forward(const int32_t* tokens, int64_t n, bool all_logits) override {
    PF_CHECK(n > 0, "forward: no tokens");
    NoGradScope no_grad;
    Tensor out = all_logits ? Tensor::empty({n, m_.vocab_size()}) : Tensor();
    int64_t i = 0;
    if (!all_logits) {
      // Only the last token's cycle matters: inputs before its window are never seen, and
      // inputs before its first new token need only their keys and values (its earlier
      // latents are re-encoded when it starts).
      const Cycle last = cycle_of(pos_ + n - 1, L_, M_);
      if (last.win > pos_) {
        const int64_t skip = std::min(n, last.win - pos_);
        toks_.clear();
        win_ = pos_ + skip;
        pos_ += skip;
        i += skip;
        cycle_ = -1;
      }
      if (last.index != cycle_ && last.start > pos_) {
        slide_to(last.win);
        const int64_t kv_only = last.start - pos_;
        for (int64_t s = 0; s < kv_only; s += kChunk) {
          const int64_t len = std::min(kChunk, kv_only - s);
          append_inputs(tokens + i + s, len, /*x=*/nullptr);
        }
        i += kv_only;
        cycle_ = -1;
      }
    }
    while (i < n) {
      const Cycle cyc = cycle_of(pos_, L_, M_);
      if (cyc.index != cycle_) enter(cyc);
      const int64_t len = std::min({n - i, cyc.end - pos_, kChunk});
      Var x;
      append_inputs(tokens + i, len, &x);
      const Tensor h = latents(x, pos_ - len, len);  // (len, d)
      if (all_logits) {
        out.slice(0, i, i + len).copy_from(m_.head_logits(h));
      } else if (i + len == n) {
        out = m_.head_logits(h.slice(0, len - 1, len).clone());
      }
      i += len;
    }
    remember_logits(out);
    return out;
  }

  int64_t position() const override { return pos_; }
  int64_t capacity() const override { return kUnboundedContext; }
  void reset() override {
    pos_ = win_ = 0;
    cycle_ = -1;
    toks_.clear();
    pool_->clear(0);
  }

  std::vector<std::pair<std::string, Tensor>> export_state() const override {
    const int64_t rows = pos_ - win_;
    Tensor ids = Tensor::empty({rows});
    for (int64_t r = 0; r < rows; ++r) ids.data()[r] = static_cast<float>(toks_[r]);
    NamedTensors out{{"window_tokens", ids},
                     {"input_k", k_.slice(0, 0, rows).clone()},
                     {"input_v", v_.slice(0, 0, rows).clone()}};
    for (auto& t : pool_->save(0)) out.push_back(std::move(t));
    return out;
  }

  void import_state(const std::vector<std::pair<std::string, Tensor>>& state,
                    int64_t position) override {
    PF_CHECK(position > 0, "perceiver-ar: a saved state holds at least one token");
    PF_CHECK(state.size() >= 3 && state[0].first == "window_tokens" &&
                 state[1].first == "input_k" && state[2].first == "input_v",
             "perceiver-ar: the saved state lacks its window (window_tokens, input_k, input_v)");
    const Cycle cyc = cycle_of(position - 1, L_, M_);
    const int64_t rows = position - cyc.win;
    const Tensor& ids = state[0].second;
    PF_CHECK(ids.dim() == 1 && ids.size(0) == rows, "perceiver-ar: the saved window holds ",
             ids.numel(), " tokens, position ", position, " needs ", rows);
    for (const auto* t : {&state[1].second, &state[2].second})
      PF_CHECK(t->dim() == 2 && t->size(0) == rows && t->size(1) == kvd_,
               "perceiver-ar: saved input keys/values have the wrong shape");
    std::vector<int32_t> toks(rows);
    for (int64_t r = 0; r < rows; ++r) {
      const float f = ids.data()[r];
      PF_CHECK(f >= 0 && f < static_cast<float>(m_.vocab_size()) && f == static_cast<int32_t>(f),
               "perceiver-ar: saved token ", f, " is not a token id");
      toks[r] = static_cast<int32_t>(f);
    }
    const NamedTensors rest(state.begin() + 3, state.end());
    pool_->load(0, rest, position - cyc.lat);
    pos_ = win_;  // nothing held while the cache is resized
    reserve(rows);
    toks_ = std::move(toks);
    k_.slice(0, 0, rows).copy_from(state[1].second);
    v_.slice(0, 0, rows).copy_from(state[2].second);
    pos_ = position;
    win_ = cyc.win;
    cycle_ = cyc.index;
  }

 private:
  // Room for `rows` cached inputs (keeps the rows held now).
  void reserve(int64_t rows) {
    if (k_.defined() && k_.size(0) >= rows) return;
    const int64_t cap = std::min(L_, std::max(rows, k_.defined() ? 2 * k_.size(0) : rows));
    Tensor k = Tensor::zeros({cap, kvd_}), v = Tensor::zeros({cap, kvd_});
    const int64_t held = pos_ - win_;
    if (held > 0) {
      k.slice(0, 0, held).copy_from(k_.slice(0, 0, held));
      v.slice(0, 0, held).copy_from(v_.slice(0, 0, held));
    }
    k_ = k;
    v_ = v;
  }

  // Embeds tokens at positions pos_ .., caches their keys and values, advances pos_.
  void append_inputs(const int32_t* ids, int64_t len, Var* x_out) {
    PF_CHECK(pos_ + len - win_ <= L_, "perceiver-ar: window overflow");
    reserve(pos_ + len - win_);
    Var x = m_.embed_rows(ids, len);  // (len, d)
    std::vector<int64_t> pos(len);
    for (int64_t r = 0; r < len; ++r) pos[r] = pos_ + r;
    const int64_t row = pos_ - win_;
    m_.input_kv(x, pos.data(), k_.data() + row * kvd_, v_.data() + row * kvd_);
    toks_.insert(toks_.end(), ids, ids + len);
    pos_ += len;
    if (x_out) *x_out = x;
  }

  // Latents at positions p0 .. p0+len-1 (their inputs cached) -> hidden (len, d).
  Tensor latents(const Var& x, int64_t p0, int64_t len) {
    std::vector<int64_t> pos(len);
    for (int64_t r = 0; r < len; ++r) pos[r] = p0 + r;
    return m_.latent_rows(x, pos.data(), k_.data(), v_.data(), p0 + len - win_, p0 - win_, *pool_)
        .value();
  }

  // Drops the cached inputs before position w.
  void slide_to(int64_t w) {
    const int64_t shift = w - win_, keep = pos_ - w;
    if (shift <= 0) return;
    std::memmove(k_.data(), k_.data() + shift * kvd_, keep * kvd_ * sizeof(float));
    std::memmove(v_.data(), v_.data() + shift * kvd_, keep * kvd_ * sizeof(float));
    toks_.erase(toks_.begin(), toks_.begin() + shift);
    win_ = w;
  }

  // Starts a cycle at pos_: slides the window and re-encodes the cycle's earlier latents.
  void enter(const Cycle& cyc) {
    PF_CHECK(cyc.win >= win_ && cyc.lat >= cyc.win && cyc.lat <= pos_,
             "perceiver-ar: inconsistent window");
    slide_to(cyc.win);
    pool_->clear(0);
    for (int64_t p = cyc.lat; p < pos_; p += kChunk) {
      const int64_t len = std::min(kChunk, pos_ - p);
      latents(m_.embed_rows(toks_.data() + (p - win_), len), p, len);
    }
    cycle_ = cyc.index;
  }

  PerceiverAR& m_;
  const int64_t L_, M_, kvd_;
  Tensor k_, v_;                     // (<= L, KV*hd): inputs [win_, pos_), rotated keys and values
  std::vector<int32_t> toks_;        // tokens of [win_, pos_)
  std::unique_ptr<StatePool> pool_;  // the latents' self-attention caches (capacity M)
  int64_t pos_ = 0, win_ = 0;
  int64_t cycle_ = -1;  // the cycle the latent caches belong to; -1: none
};

}  // namespace

std::unique_ptr<InferenceSession> PerceiverAR::new_session(int64_t max_tokens) {
  PF_CHECK(max_tokens > 0, "session capacity must be positive");
  return std::make_unique<PerceiverArSession>(*this, max_tokens);
}

// The window and latent count a token at `position` is predicted with (for tests and eval).
void perceiver_ar_window(int64_t position, int64_t L, int64_t M, int64_t* win, int64_t* lat) {
  const Cycle c = cycle_of(position, L, M);
  *win = c.win;
  *lat = c.lat;
}

}  // namespace pf
