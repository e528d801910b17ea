// Differentiable ops. Each calls a forward kernel and, when recording, registers the
// matching backward kernel on the active tape. Shapes are noted per op.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "autograd/tape.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/rope.h"

namespace pf {

// x: (..., K), W: (N, K) -> (..., N). PyTorch Linear without bias.
Var linear(const Var& x, const Var& W);
// a: (M, K), b: (K, N) -> (M, N); or batched a: (G, M, K), b: (G, K, N) -> (G, M, N).
Var matmul(const Var& a, const Var& b);
// W: (V, D), ids: B*T tokens -> (B, T, D).
Var embedding(const Var& W, const std::vector<int32_t>& ids, int64_t B, int64_t T);

// A view with a new shape (same numel); its gradient aliases the input's, so it is free.
Var reshape(const Var& x, const Shape& shape);

// Rows [begin, end) of a 2-D x as a view whose gradient aliases x's (free): lets one
// stored projection act as several, e.g. Mamba's in_proj as x and z projections.
Var rows(const Var& x, int64_t begin, int64_t end);

// Activation recomputation: runs f(x) without recording; the backward re-runs f on a
// private tape and backpropagates through it. Only x and the output are kept between
// forward and backward. f must be deterministic (dropout seeds are explicit).
Var checkpoint(const std::function<Var(const Var&)>& f, const Var& x);

// Stacks 2-D matrices with equal column counts along rows: (sum r_i, c). Lets several
// stored projections run as one matrix product.
Var concat_rows(const std::vector<Var>& parts);

// x: (B, T, C) -> (B, n, C): the last n positions of each sequence (a copy).
Var seq_tail(const Var& x, int64_t n);

// x: (M, C) -> (B, M, C): the same rows for every batch item (Perceiver's learned latents
// and queries); the gradient sums over the batch.
Var repeat_batch(const Var& x, int64_t B);
// x: (B, T, C) -> (B, C): the mean over positions (pooling a sequence for a classifier).
Var seq_mean(const Var& x);

// Splits the last dim of x (..., sum(sizes)) into contiguous pieces (..., sizes[i]).
std::vector<Var> split_last(const Var& x, const std::vector<int64_t>& sizes);

Var add(const Var& a, const Var& b);  // same shapes
Var mul(const Var& a, const Var& b);  // same shapes
Var scale(const Var& a, float s);
Var gelu(const Var& x);
Var silu(const Var& x);
Var swiglu(const Var& gate, const Var& up);  // silu(gate) * up
// Identity when p == 0 or when not training.
Var dropout(const Var& x, float p, uint64_t seed);

// Over the last dim. w: (D) or undefined (no weight); b: (D) or undefined.
Var rmsnorm(const Var& x, const Var& w, float eps);
Var layernorm(const Var& x, const Var& w, const Var& b, float eps);

// logits: (N, V), targets: N ids (negative = ignored) -> scalar mean loss in nats.
Var cross_entropy(const Var& logits, const std::vector<int32_t>& targets);

// x: (B, T, H, hd), positions pos0 .. pos0+T-1. Hugging Face rotate-half by default.
Var rope(const Var& x, int64_t pos0, float theta);
Var rope(const Var& x, int64_t pos0, const cpu::RopeStyle& style);

// x: (rows, n) scaled row-wise by constant factors (rows); no gradient to the factors.
Var scale_rows(const Var& x, const Tensor& factors);

// q: (B, T, H, hd); k, v: (B, T, KV, hd) -> (B, T, H, hd). Causal, tiled.
Var attention(const Var& q, const Var& k, const Var& v);
// q: (B, Tq, H, hd); k, v: (B, Tk, KV, hd) -> (B, Tq, H, hd), for any Tq and Tk. The mask is
// a mode; q_pos0 is query 0's position among the keys for AttnMask::Causal.
Var attention(const Var& q, const Var& k, const Var& v, cpu::AttnMask mask, int64_t q_pos0 = 0);

}  // namespace pf
