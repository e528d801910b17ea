// A sequence mixer: the per-layer body that differs between architectures (attention,
// retention, Mamba-1, Mamba-2). One class serves training (a taped forward over (B, T)
// token grids) and inference (a cached forward over rows of many sequences, each
// continuing its own slot of a LayerState the mixer creates).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "models/core/layer_state.h"
#include "models/core/seq_batch.h"
#include "nn/params.h"

namespace pf {

class Mixer {
 public:
  virtual ~Mixer() = default;
  // Every parameter once; prefix is e.g. "model.layers.3.self_attn.".
  virtual void visit(const std::string& prefix, const ParamVisitor& visit) = 0;
  // h: (B, T, d) for tokens at positions pos0 .. pos0 + T - 1 -> (B, T, d), on the tape.
  virtual Var forward(const Var& h, int64_t B, int64_t T, int64_t pos0) = 0;
  // Inference without a tape: h (rows, d), rows sequence-major as `batch` lays them out
  // -> (rows, d); each run continues and advances its slot of `state`.
  virtual Var forward_cached(const Var& h, const SeqBatch& batch, LayerState& state) = 0;
  // State for `slots` sequences; capacity bounds the tokens a KV cache holds.
  virtual std::unique_ptr<LayerState> new_state(int64_t slots, int64_t capacity) const = 0;
  // True when the state does not grow with context (recurrent layers).
  virtual bool bounded_state() const = 0;
  // Bytes of one sequence's state at a context length.
  virtual int64_t state_bytes(int64_t context) const = 0;
  // Forward FLOPs per token at a context length, projections included.
  virtual double flops_per_token(int64_t context) const = 0;
  // Extra lines for `info` (e.g. RetNet's per-head memory); empty by default.
  virtual std::vector<std::string> describe() const { return {}; }
};

}  // namespace pf
