// A residual block: x + mixer(norm(x)), then, when the block has one, x + mlp(norm(x)).
// The MLP is SwiGLU, silu(gate(h)) * up(h) -> down, stored as its checkpoints store it.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "models/core/mixer.h"

namespace pf {

enum class MlpLayout {
  None,         // no MLP (Mamba)
  Separate,     // gate, up, down matrices (Llama, current flash-linear-attention)
  FusedGateUp,  // one (2F, d) matrix: gate rows, then up rows (fla before February 2025)
  FusedUpGate,  // one (2F, d) matrix: up rows, then gate rows (mamba_ssm GatedMLP fc1)
};

struct MlpSpec {
  MlpLayout layout = MlpLayout::None;
  int64_t ffn = 0;                   // F
  std::string norm, gate, up, down;  // tensor names after the layer prefix (fused: gate)
  float init_std = 0.02f, out_std = 0.02f;
};

// The SwiGLU MLP with its pre-norm, as a residual branch: x + mlp(norm(x)).
class Mlp {
 public:
  Mlp(const MlpSpec& spec, int64_t d, Rng& rng);
  void visit(const std::string& prefix, const ParamVisitor& visit);
  // x: (..., d) -> x + mlp(norm(x)), with dropout p on the branch.
  Var residual(const Var& x, float eps, float p = 0.0f, uint64_t seed = 0) const;
  int64_t param_count(int64_t d) const { return d + 3 * d * spec_.ffn; }

 private:
  MlpSpec spec_;
  Var norm_;           // (d)
  Var w_gate_, w_up_;  // (F, d), or w_gate_ (2F, d) when fused
  Var w_down_;         // (d, F)
};

struct BlockSpec {
  char kind = '?';         // the pattern letter, for info
  std::string prefix;      // e.g. "model.layers.3."
  std::string norm;        // e.g. "input_layernorm.weight"
  std::string mixer_name;  // e.g. "self_attn."
  std::function<std::unique_ptr<Mixer>(Rng&)> make_mixer;
  int64_t mixer_params = 0;  // exact, for counting a config before building it
  MlpSpec mlp;
  int64_t param_count(int64_t d) const;
};

// Sets a block's mixer: its pattern letter, a factory from the mixer's spec, and the spec's
// exact parameter count.
template <class Spec>
void set_mixer(BlockSpec& b, char kind, const Spec& s,
               std::unique_ptr<Mixer> (*make)(const Spec&, Rng&)) {
  b.kind = kind;
  b.make_mixer = [s, make](Rng& rng) { return make(s, rng); };
  b.mixer_params = s.param_count();
}

class Block {
 public:
  Block(const BlockSpec& spec, int64_t d_model, float eps, Rng& rng);
  void visit(const ParamVisitor& visit);
  // x: (B, T, d) -> (B, T, d) on the tape; dropout on both residual branches.
  Var forward(const Var& x, int64_t B, int64_t T, int64_t pos0, float p, uint64_t seed);
  // x: (rows, d) -> (rows, d) without a tape.
  Var forward_cached(const Var& x, const SeqBatch& batch, LayerState& state);
  Mixer& mixer() { return *mixer_; }
  const BlockSpec& spec() const { return spec_; }

 private:
  BlockSpec spec_;
  float eps_;
  Var norm_;  // (d)
  std::unique_ptr<Mixer> mixer_;
  std::unique_ptr<Mlp> mlp_;  // null when the block has none
};

}  // namespace pf
