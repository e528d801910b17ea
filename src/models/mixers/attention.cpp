#include "models/mixers/attention.h"

#include "autograd/ops.h"
#include "base/error.h"
#include "models/mixers/cached_ops.h"

namespace pf {

namespace {

class Attention : public Mixer {
 public:
  Attention(const AttentionSpec& s, Rng& rng) : s_(s) {
    const int64_t d = s.d, qd = s.heads * s.head_dim, kvd = s.kv_heads * s.head_dim;
    wq_ = normal_param({qd, d}, s.init_std, rng);
    wk_ = normal_param({kvd, d}, s.init_std, rng);
    wv_ = normal_param({kvd, d}, s.init_std, rng);
    wo_ = normal_param({d, qd}, s.out_std, rng);
  }

  void visit(const std::string& p, const ParamVisitor& visit) override {
    visit(p + "q_proj.weight", wq_, ParamKind::Matrix);
    visit(p + "k_proj.weight", wk_, ParamKind::Matrix);
    visit(p + "v_proj.weight", wv_, ParamKind::Matrix);
    visit(p + "o_proj.weight", wo_, ParamKind::Matrix);
  }

  Var forward(const Var& h, int64_t B, int64_t T, int64_t pos0) override {
    PF_CHECK(pos0 == 0, "attention: the taped forward starts at position 0");
    const int64_t H = s_.heads, KV = s_.kv_heads, hd = s_.head_dim;
    Var q = rope(reshape(linear(h, wq_), {B, T, H, hd}), pos0, s_.rope);   // (B, T, H, hd)
    Var k = rope(reshape(linear(h, wk_), {B, T, KV, hd}), pos0, s_.rope);  // (B, T, KV, hd)
    Var v = reshape(linear(h, wv_), {B, T, KV, hd});                       // (B, T, KV, hd)
    return linear(reshape(attention(q, k, v), {B, T, H * hd}), wo_);       // (B, T, d)
  }

  Var forward_cached(const Var& h, const SeqBatch& batch, LayerState& state) override {
    auto& kv = dynamic_cast<KvState&>(state);
    const int64_t H = s_.heads, KV = s_.kv_heads, hd = s_.head_dim, rows = batch.rows();
    Var q = linear(h, wq_);  // (rows, H*hd)
    Var k = linear(h, wk_);  // (rows, KV*hd)
    Var v = linear(h, wv_);  // (rows, KV*hd)
    const std::vector<int64_t> pos = batch.row_positions();
    cpu::rope_fwd_rows(rows, H, hd, pos.data(), s_.rope, q.data(), q.data());
    cpu::rope_fwd_rows(rows, KV, hd, pos.data(), s_.rope, k.data(), k.data());
    Var a = attention_cached(q, k, v, H, KV, hd, batch, kv);  // (rows, H*hd)
    return linear(a, wo_);                                    // (rows, d)
  }

  std::unique_ptr<LayerState> new_state(int64_t slots, int64_t capacity) const override {
    return std::make_unique<KvState>(slots, capacity, s_.kv_heads, s_.head_dim);
  }
  bool bounded_state() const override { return false; }
  int64_t state_bytes(int64_t context) const override {
    return 2 * context * s_.kv_heads * s_.head_dim * static_cast<int64_t>(sizeof(float));
  }
  double flops_per_token(int64_t context) const override {
    // Causal attention: on average a token attends to context/2 keys; QK^T and PV.
    return 2.0 * static_cast<double>(s_.param_count()) +
           2.0 * 2.0 * s_.heads * s_.head_dim * (context / 2.0);
  }

 private:
  AttentionSpec s_;
  Var wq_, wk_, wv_, wo_;  // (H*hd, d), (KV*hd, d), (KV*hd, d), (d, H*hd)
};

}  // namespace

std::unique_ptr<Mixer> make_attention(const AttentionSpec& s, Rng& rng) {
  return std::make_unique<Attention>(s, rng);
}

}  // namespace pf
