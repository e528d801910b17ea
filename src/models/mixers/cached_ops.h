// Pieces of the cached forward that several mixers share: the causal conv over the rows of
// a SeqBatch (each run continuing its slot's conv state) and causal attention over each
// run's slot of a KV cache.
#pragma once
#include "autograd/tape.h"
#include "models/core/layer_state.h"
#include "models/core/seq_batch.h"

namespace pf {

// x: (rows, C) -> (rows, C), w: (C, 1, K) or (C, K), bias: (C). Tensor `which` of `state`
// holds the (S, C, K) conv states, advanced in place. No activation.
Var conv1d_cached(const Var& x, int64_t C, int64_t K, const Var& w, const Var& bias,
                  RecurrentState& state, size_t which, const SeqBatch& batch);

// q: (rows, H*hd); k, v: (rows, KV*hd), already rotated. Appends every run's keys and values
// to its slot of `kv`, then attends causally over what the slot holds -> (rows, H*hd).
Var attention_cached(const Var& q, const Var& k, const Var& v, int64_t H, int64_t KV, int64_t hd,
                     const SeqBatch& batch, KvState& kv);

}  // namespace pf
