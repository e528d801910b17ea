// Causal depthwise 1-D convolution with bias (Mamba's short conv before the scan):
//   y[b, t, c] = bias[c] + sum_{k<K} w[c, k] * xpad[b, t - (K-1) + k, c]
// where xpad is x preceded by the last K-1 inputs of the previous chunk (state_in) or by
// zeros. The state layout (B, C, K), oldest input first, matches Mamba's conv_state.
// Vectorised over channels; parallel over (batch, time blocks) or channel blocks.
#pragma once
#include <cstdint>

namespace pf::cpu {

// x: (B, L, C); w: (C, K); bias: (C) or null; y: (B, L, C) (must not alias x).
// state_in: (B, C, K) or null (zeros); only its last K-1 inputs are used.
// state_out: (B, C, K) or null: the last K inputs after this chunk (reaching into state_in
// when L < K), for continuing; it may alias state_in.
void conv1d_causal_fwd(int64_t B, int64_t L, int64_t C, int64_t K, const float* x, const float* w,
                       const float* bias, const float* state_in, float* y, float* state_out);

// Backward of the state_in = null forward; accumulates (+=) into dx (B, L, C), dw (C, K),
// dbias (C); any of them may be null. Each output element has one writer (deterministic).
void conv1d_causal_bwd(int64_t B, int64_t L, int64_t C, int64_t K, const float* x, const float* w,
                       const float* dy, float* dx, float* dw, float* dbias);

// One token for each of B rows: x (B, C); row b's state (C, K), at slot slots[b] of a
// (S, C, K) state tensor (slot b when slots is null), is shifted left by one and x
// appended, then y (B, C) = sum_k state * w + bias.
void conv1d_causal_step(int64_t B, int64_t C, int64_t K, const float* x, const float* w,
                        const float* bias, float* state, float* y, const int64_t* slots = nullptr);

}  // namespace pf::cpu
