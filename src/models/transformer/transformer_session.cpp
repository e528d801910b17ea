// KV-cache inference: each call appends the new tokens' keys/values to the cache and
// attends over everything cached, so a decode step never recomputes the prefix.
#include <cstring>

#include "autograd/ops.h"
#include "base/error.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/gemm.h"
#include "models/transformer/transformer_model.h"

namespace pf {

namespace {
class TransformerSession : public InferenceSession {
 public:
  TransformerSession(TransformerModel& m, int64_t max_tokens) : m_(m), cap_(max_tokens) {
    const auto& c = m.config();
    PF_CHECK(max_tokens > 0, "session capacity must be positive");
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      k_cache_.push_back(Tensor::empty({cap_, c.num_key_value_heads, c.head_dim()}));
      v_cache_.push_back(Tensor::empty({cap_, c.num_key_value_heads, c.head_dim()}));
    }
  }

  int64_t position() const override { return pos_; }
  int64_t capacity() const override { return cap_; }
  void reset() override { pos_ = 0; }

  Tensor forward(const int32_t* tokens, int64_t n, bool all_logits) override {
    PF_CHECK(n > 0, "forward: no tokens");
    PF_CHECK(pos_ + n <= cap_, "context full: ", pos_ + n, " tokens exceed the session capacity ",
             cap_);
    NoGradScope no_grad;
    const auto& c = m_.config();
    const int64_t D = c.hidden_size, hd = c.head_dim();
    const int64_t H = c.num_attention_heads, KV = c.num_key_value_heads;
    const float eps = static_cast<float>(c.rms_norm_eps);
    const float theta = static_cast<float>(c.rope_theta);
    std::vector<int32_t> ids(tokens, tokens + n);
    Var x = embedding(m_.embed_, ids, 1, n);  // (1, n, D)
    for (size_t l = 0; l < m_.layers_.size(); ++l) {
      auto& L = m_.layers_[l];
      Var h = rmsnorm(x, L.attn_norm, eps);
      Var q = rope(reshape(linear(h, L.wq), {1, n, H, hd}), pos_, theta);  // (1, n, H, hd)
      Var k = rope(reshape(linear(h, L.wk), {1, n, KV, hd}), pos_, theta);
      Var v = linear(h, L.wv);  // (1, n, KV*hd)
      std::memcpy(k_cache_[l].data() + pos_ * KV * hd, k.data(), n * KV * hd * sizeof(float));
      std::memcpy(v_cache_[l].data() + pos_ * KV * hd, v.data(), n * KV * hd * sizeof(float));
      cpu::AttnShape s = cpu::attn_shape(1, n, pos_ + n, H, KV, hd, pos_);
      Var a(Tensor::empty({1, n, H * hd}));  // (1, n, H*hd)
      cpu::attention_fwd(s, q.data(), k_cache_[l].data(), v_cache_[l].data(), a.data(), nullptr);
      x = add(x, linear(a, L.wo));
      h = rmsnorm(x, L.mlp_norm, eps);
      x = add(x, linear(swiglu(linear(h, L.w_gate), linear(h, L.w_up)), L.w_down));
    }
    pos_ += n;
    // Only the rows whose logits are wanted go through the final norm and the head.
    const int64_t rows = all_logits ? n : 1;
    Tensor xs = x.value().view({n, D}).slice(0, n - rows, n).contiguous();  // (rows, D)
    Var hf = rmsnorm(Var(xs), m_.norm_, eps);
    Tensor logits = Tensor::empty({rows, c.vocab_size});  // (rows, V)
    cpu::linear_fwd(rows, c.vocab_size, D, hf.data(), m_.head().data(), 0.0f, logits.data());
    remember_logits(logits);
    return logits;
  }

  std::vector<std::pair<std::string, Tensor>> export_state() const override {
    // Only the filled part of the cache: (position, KV, hd) per layer.
    std::vector<std::pair<std::string, Tensor>> out;
    for (size_t l = 0; l < k_cache_.size(); ++l) {
      out.emplace_back("k_cache." + std::to_string(l), k_cache_[l].slice(0, 0, pos_));
      out.emplace_back("v_cache." + std::to_string(l), v_cache_[l].slice(0, 0, pos_));
    }
    return out;
  }

  void import_state(const std::vector<std::pair<std::string, Tensor>>& state,
                    int64_t position) override {
    PF_CHECK(position <= cap_, "state holds ", position, " tokens, more than the session capacity ",
             cap_, " (raise --context)");
    PF_CHECK(state.size() == 2 * k_cache_.size(), "state has ", state.size(), " tensors, expected ",
             2 * k_cache_.size());
    for (size_t l = 0; l < k_cache_.size(); ++l) {
      const Tensor& k = state[2 * l].second;
      const Tensor& v = state[2 * l + 1].second;
      const Shape want = {position, k_cache_[l].size(1), k_cache_[l].size(2)};
      PF_CHECK(k.shape() == want && v.shape() == want, "state tensor for layer ", l, " has shape ",
               shape_str(k.shape()), ", expected ", shape_str(want));
      k_cache_[l].slice(0, 0, position).copy_from(k);
      v_cache_[l].slice(0, 0, position).copy_from(v);
    }
    pos_ = position;
  }

 private:
  TransformerModel& m_;
  int64_t cap_;
  int64_t pos_ = 0;
  std::vector<Tensor> k_cache_, v_cache_;  // per layer (cap, KV, hd)
};
}  // namespace

std::unique_ptr<InferenceSession> TransformerModel::new_session(int64_t max_tokens) {
  return std::make_unique<TransformerSession>(*this, max_tokens);
}

}  // namespace pf
