// Multi-head attention with grouped key/value heads, flash-style: queries and keys are
// processed in tiles with an online softmax, so no (Tq, Tk) matrix is stored. Memory
// beyond inputs and outputs is O(tile^2) per thread plus lse (B, H, Tq). Tq may differ
// from Tk (cross-attention, a KV cache); the mask is a mode, not a matrix.
#pragma once
#include <cstdint>

namespace pf::cpu {

// Which keys a query sees.
enum class AttnMask {
  Causal,        // query i (absolute position q_pos0 + i) sees keys j <= q_pos0 + i
  RightAligned,  // causal with the queries as the last Tq positions: q_pos0 = Tk - Tq
  None,          // every query sees every key (Perceiver IO's cross-attention)
};

struct AttnShape {
  int64_t B = 1, Tq = 1, Tk = 1;  // batch, query tokens, key tokens
  int64_t H = 1, KV = 1, hd = 1;  // query heads, key/value heads (H % KV == 0), head dim
  int64_t q_pos0 = 0;    // causal: absolute position of query 0; query i sees keys j <= q_pos0 + i
  bool see_all = false;  // AttnMask::None: every query sees all Tk keys
  // Element strides. q/out: (B, Tq, H, hd); k/v: (B, Tk, KV, hd); the last dim is contiguous.
  int64_t q_bs = 0, q_ts = 0, k_bs = 0, k_ts = 0, o_bs = 0, o_ts = 0;
  float scale = 1.0f;  // usually 1/sqrt(hd)
  // The last key query row i sees.
  int64_t last_key(int64_t i) const { return see_all ? Tk - 1 : q_pos0 + i; }
  // The first query row that sees key j.
  int64_t first_row_seeing(int64_t j) const { return see_all || j <= q_pos0 ? 0 : j - q_pos0; }
};

// Fills in contiguous strides and scale 1/sqrt(hd); causal with queries from q_pos0.
AttnShape attn_shape(int64_t B, int64_t Tq, int64_t Tk, int64_t H, int64_t KV, int64_t hd,
                     int64_t q_pos0);
// The same for a mask mode; q_pos0 is used only by AttnMask::Causal.
AttnShape attn_shape(int64_t B, int64_t Tq, int64_t Tk, int64_t H, int64_t KV, int64_t hd,
                     AttnMask mask, int64_t q_pos0 = 0);

// out: (B, Tq, H, hd); lse: (B, H, Tq) log-sum-exp of scaled scores (may be null).
void attention_fwd(const AttnShape& s, const float* q, const float* k, const float* v, float* out,
                   float* lse);

// Accumulates dq, dk, dv (same layouts as q, k, v) from dout. Needs out and lse of the forward.
void attention_bwd(const AttnShape& s, const float* q, const float* k, const float* v,
                   const float* out, const float* lse, const float* dout, float* dq, float* dk,
                   float* dv);

// Reference: naive attention that materialises the score matrix, in double precision.
void attention_naive(const AttnShape& s, const float* q, const float* k, const float* v,
                     float* out);

}  // namespace pf::cpu
