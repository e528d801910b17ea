#include "models/mixers/mha.h"

#include "autograd/ops.h"
#include "autograd/ops_ssm.h"
#include "base/error.h"
#include "kernels/cpu/rope.h"
#include "models/mixers/cached_ops.h"
#include "models/mixers/mamba.h"

namespace pf {

namespace {

// A KV cache plus, with a conv, its last d_conv inputs per slot (pre-conv, so decoding
// continues the full-sequence math exactly).
class MhaState : public LayerState {
 public:
  MhaState(const MhaSpec& s, int64_t slots, int64_t capacity)
      : kv(slots, capacity, s.kv_heads, s.head_dim),
        conv(slots, s.d_conv > 0
                        ? std::vector<std::pair<std::string, Shape>>{{"conv_state",
                                                                      {s.qkv_dim(), s.d_conv}}}
                        : std::vector<std::pair<std::string, Shape>>{}) {}
  void clear(int64_t slot) override { conv.clear(slot); }
  void copy(int64_t src, int64_t dst, int64_t len) override {
    kv.copy(src, dst, len);
    conv.copy(src, dst, len);
  }
  int64_t bytes(int64_t len) const override { return kv.bytes(len) + conv.bytes(len); }
  NamedTensors save(int64_t slot, int64_t len, int64_t layer) const override {
    NamedTensors out = kv.save(slot, len, layer);
    for (auto& t : conv.save(slot, len, layer)) out.push_back(std::move(t));
    return out;
  }
  void load(int64_t slot, int64_t len, const NamedTensors& t, size_t* next) override {
    kv.load(slot, len, t, next);
    conv.load(slot, len, t, next);
  }
  KvState kv;
  RecurrentState conv;
};

class Mha : public Mixer {
 public:
  Mha(const MhaSpec& s, Rng& rng) : s_(s) {
    const int64_t qd = s.qkv_dim(), od = s.heads * s.head_dim;
    in_proj_ = uniform_fan_in({qd, s.d}, s.d, rng);
    if (s.d_conv > 0) {
      conv_w_ = uniform_fan_in({qd, 1, s.d_conv}, s.d_conv, rng);
      conv_b_ = uniform_fan_in({qd}, s.d_conv, rng);
    }
    out_proj_ = rescaled_out_proj(s.d, od, s.n_layer, rng);
    rope_ = cpu::RopeStyle{static_cast<float>(s.rotary_base), s.rotary_interleaved, false,
                           s.rotary_dim};
  }

  void visit(const std::string& p, const ParamVisitor& visit) override {
    visit(p + "in_proj.weight", in_proj_, ParamKind::Matrix);
    if (s_.d_conv > 0) {
      visit(p + "conv1d.weight", conv_w_, ParamKind::Matrix);
      visit(p + "conv1d.bias", conv_b_, ParamKind::Bias);
    }
    visit(p + "out_proj.weight", out_proj_, ParamKind::Matrix);
  }

  Var forward(const Var& h, int64_t B, int64_t T, int64_t pos0) override {
    PF_CHECK(pos0 == 0, "attention: the taped forward starts at position 0");
    const int64_t H = s_.heads, KV = s_.kv_heads, hd = s_.head_dim;
    Var qkv = linear(h, in_proj_);  // (B, T, qkv)
    if (s_.d_conv > 0)
      qkv = conv1d_causal(qkv, reshape(conv_w_, {s_.qkv_dim(), s_.d_conv}), conv_b_);
    auto p = split_last(qkv, {H * hd, KV * hd, KV * hd});
    Var q = reshape(p[0], {B, T, H, hd});  // (B, T, H, hd)
    Var k = reshape(p[1], {B, T, KV, hd});
    if (s_.rotary_dim > 0) {
      q = rope(q, 0, rope_);
      k = rope(k, 0, rope_);
    }
    Var v = reshape(p[2], {B, T, KV, hd});
    return linear(reshape(attention(q, k, v), {B, T, H * hd}), out_proj_);  // (B, T, d)
  }

  Var forward_cached(const Var& h, const SeqBatch& batch, LayerState& state) override {
    auto& st = dynamic_cast<MhaState&>(state);
    const int64_t H = s_.heads, KV = s_.kv_heads, hd = s_.head_dim, rows = batch.rows();
    const int64_t qd = s_.qkv_dim(), K = s_.d_conv;
    Var qkv = linear(h, in_proj_);  // (rows, qkv)
    if (K > 0) qkv = conv1d_cached(qkv, qd, K, conv_w_, conv_b_, st.conv, 0, batch);
    auto p = split_last(qkv, {H * hd, KV * hd, KV * hd});  // q, k, v: (rows, ...)
    const std::vector<int64_t> pos = batch.row_positions();
    if (s_.rotary_dim > 0) {
      cpu::rope_fwd_rows(rows, H, hd, pos.data(), rope_, p[0].data(), p[0].data());
      cpu::rope_fwd_rows(rows, KV, hd, pos.data(), rope_, p[1].data(), p[1].data());
    }
    Var a = attention_cached(p[0], p[1], p[2], H, KV, hd, batch, st.kv);  // (rows, H*hd)
    return linear(a, out_proj_);                                          // (rows, d)
  }

  std::unique_ptr<LayerState> new_state(int64_t slots, int64_t capacity) const override {
    return std::make_unique<MhaState>(s_, slots, capacity);
  }
  bool bounded_state() const override { return false; }
  int64_t state_bytes(int64_t context) const override {
    return (2 * context * s_.kv_heads * s_.head_dim + s_.qkv_dim() * s_.d_conv) *
           static_cast<int64_t>(sizeof(float));
  }
  double flops_per_token(int64_t context) const override {
    return 2.0 * static_cast<double>(s_.param_count()) +
           2.0 * 2.0 * s_.heads * s_.head_dim * (context / 2.0);
  }

 private:
  MhaSpec s_;
  cpu::RopeStyle rope_;
  Var in_proj_;   // (qkv, d): rows [q | k | v]
  Var conv_w_;    // (qkv, 1, K) when d_conv > 0
  Var conv_b_;    // (qkv)
  Var out_proj_;  // (d, H*hd)
};

}  // namespace

std::unique_ptr<Mixer> make_mha(const MhaSpec& s, Rng& rng) {
  return std::make_unique<Mha>(s, rng);
}

}  // namespace pf
