#include "models/mixers/cross_attention.h"

#include "autograd/ops.h"
#include "base/error.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/typed_linear.h"

namespace pf {

CrossAttention::CrossAttention(const CrossAttentionSpec& s, Rng& rng) : s_(s) {
  const int64_t qd = s.heads * s.head_dim, kvd = s.kv_width();
  wq_ = normal_param({qd, s.d}, s.init_std, rng);
  wk_ = normal_param({kvd, s.d}, s.init_std, rng);
  wv_ = normal_param({kvd, s.d}, s.init_std, rng);
  wo_ = normal_param({s.d, qd}, s.out_std, rng);
}

void CrossAttention::visit(const std::string& p, const ParamVisitor& visit) {
  visit(p + "q_proj.weight", wq_, ParamKind::Matrix);
  visit(p + "k_proj.weight", wk_, ParamKind::Matrix);
  visit(p + "v_proj.weight", wv_, ParamKind::Matrix);
  visit(p + "o_proj.weight", wo_, ParamKind::Matrix);
}

Var CrossAttention::forward(const Var& hq, const Var& hkv, cpu::AttnMask mask, int64_t kv_pos0,
                            int64_t q_pos0) const {
  const int64_t B = hq.shape()[0], Tq = hq.shape()[1], Tk = hkv.shape()[1];
  const int64_t H = s_.heads, KV = s_.kv_heads, hd = s_.head_dim;
  PF_CHECK(hkv.shape()[0] == B, "cross-attention: ", B, " query sequences but ", hkv.shape()[0],
           " input sequences");
  if (mask == cpu::AttnMask::RightAligned) q_pos0 = kv_pos0 + Tk - Tq;
  PF_CHECK(!s_.rotary || mask != cpu::AttnMask::None,
           "cross-attention: rotary positions need a causal mask");
  Var q = reshape(linear(hq, wq_), {B, Tq, H, hd});    // (B, Tq, H, hd)
  Var k = reshape(linear(hkv, wk_), {B, Tk, KV, hd});  // (B, Tk, KV, hd)
  Var v = reshape(linear(hkv, wv_), {B, Tk, KV, hd});  // (B, Tk, KV, hd)
  if (s_.rotary) {
    q = rope(q, q_pos0, s_.rope);
    k = rope(k, kv_pos0, s_.rope);
  }
  Var a = attention(q, k, v, mask, q_pos0 - kv_pos0);  // (B, Tq, H, hd)
  return linear(reshape(a, {B, Tq, H * hd}), wo_);     // (B, Tq, d)
}

void CrossAttention::project_kv(const Var& hkv, const int64_t* pos, float* k, float* v) const {
  const int64_t n = hkv.shape()[0], kvd = s_.kv_width();
  cpu::linear_fwd(n, kvd, s_.d, hkv.data(), wk_.value(), 0.0f, k);
  cpu::linear_fwd(n, kvd, s_.d, hkv.data(), wv_.value(), 0.0f, v);
  if (s_.rotary) cpu::rope_fwd_rows(n, s_.kv_heads, s_.head_dim, pos, s_.rope, k, k);
}

Var CrossAttention::attend_cached(const Var& hq, const int64_t* q_pos, const float* k,
                                  const float* v, int64_t Tk, int64_t first) const {
  const int64_t n = hq.shape()[0], H = s_.heads, hd = s_.head_dim;
  Var q = linear(hq, wq_);  // (n, H*hd)
  if (s_.rotary) cpu::rope_fwd_rows(n, H, hd, q_pos, s_.rope, q.data(), q.data());
  const cpu::AttnShape sh = cpu::attn_shape(1, n, Tk, H, s_.kv_heads, hd, first);
  Var a = Var(Tensor::empty({n, H * hd}));  // (n, H*hd)
  cpu::attention_fwd(sh, q.data(), k, v, a.data(), nullptr);
  return linear(a, wo_);  // (n, d)
}

}  // namespace pf
