// Cross-attention: queries from one array (Perceiver latents), keys and values from another
// (the whole input), with the mask as a mode. q, k, v and o projections without bias; RoPE
// on queries and keys at their absolute positions, so cached keys stay valid when the
// window that holds them slides.
#pragma once
#include <cstdint>
#include <string>

#include "autograd/tape.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/rope.h"
#include "nn/params.h"

namespace pf {

struct CrossAttentionSpec {
  int64_t d = 0, heads = 1, kv_heads = 1, head_dim = 0;
  bool rotary = true;
  cpu::RopeStyle rope;
  float init_std = 0.02f, out_std = 0.02f;
  int64_t kv_width() const { return kv_heads * head_dim; }
  int64_t param_count() const { return 2 * d * heads * head_dim + 2 * d * kv_width(); }
};

class CrossAttention {
 public:
  CrossAttention(const CrossAttentionSpec& s, Rng& rng);
  void visit(const std::string& prefix, const ParamVisitor& visit);
  // hq: (B, Tq, d) queries, hkv: (B, Tk, d) inputs at positions kv_pos0 .. -> (B, Tq, d).
  // RightAligned queries sit at the last Tq input positions; Causal ones at q_pos0 ..
  // (absolute, so query i sees inputs at positions <= q_pos0 + i).
  Var forward(const Var& hq, const Var& hkv, cpu::AttnMask mask, int64_t kv_pos0,
              int64_t q_pos0 = 0) const;
  // Inference without a tape. hkv: (n, d) inputs at positions pos (n) -> k, v rows (n, KV*hd).
  void project_kv(const Var& hkv, const int64_t* pos, float* k, float* v) const;
  // hq: (n, d) queries at positions q_pos (n) over cached rows k, v: (Tk, KV*hd); query i sees
  // rows <= first + i -> (n, d).
  Var attend_cached(const Var& hq, const int64_t* q_pos, const float* k, const float* v, int64_t Tk,
                    int64_t first) const;
  const CrossAttentionSpec& spec() const { return s_; }

 private:
  CrossAttentionSpec s_;
  Var wq_, wk_, wv_, wo_;  // (H*hd, d), (KV*hd, d), (KV*hd, d), (d, H*hd)
};

}  // namespace pf
