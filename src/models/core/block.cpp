#include "models/core/block.h"

#include "autograd/ops.h"
#include "base/error.h"

namespace pf {

int64_t BlockSpec::param_count(int64_t d) const {
  const int64_t mlp_params = mlp.layout == MlpLayout::None ? 0 : d + 3 * d * mlp.ffn;
  return d + mixer_params + mlp_params;
}

Block::Block(const BlockSpec& spec, int64_t d, float eps, Rng& rng) : spec_(spec), eps_(eps) {
  norm_ = constant_param({d}, 1.0f);
  mixer_ = spec.make_mixer(rng);
  const MlpSpec& m = spec.mlp;
  if (m.layout == MlpLayout::None) return;
  mlp_norm_ = constant_param({d}, 1.0f);
  if (m.layout == MlpLayout::Separate) {
    w_gate_ = normal_param({m.ffn, d}, m.init_std, rng);
    w_up_ = normal_param({m.ffn, d}, m.init_std, rng);
  } else {
    w_gate_ = normal_param({2 * m.ffn, d}, m.init_std, rng);
  }
  w_down_ = normal_param({d, m.ffn}, m.out_std, rng);
}

void Block::visit(const ParamVisitor& visit) {
  const std::string& p = spec_.prefix;
  visit(p + spec_.norm, norm_, ParamKind::Norm);
  mixer_->visit(p + spec_.mixer_name, visit);
  const MlpSpec& m = spec_.mlp;
  if (m.layout == MlpLayout::None) return;
  visit(p + m.norm, mlp_norm_, ParamKind::Norm);
  visit(p + m.gate, w_gate_, ParamKind::Matrix);
  if (m.layout == MlpLayout::Separate) visit(p + m.up, w_up_, ParamKind::Matrix);
  visit(p + m.down, w_down_, ParamKind::Matrix);
}

Var Block::mlp(const Var& h) const {
  const int64_t F = spec_.mlp.ffn;
  switch (spec_.mlp.layout) {
    case MlpLayout::Separate:
      return linear(swiglu(linear(h, w_gate_), linear(h, w_up_)), w_down_);
    case MlpLayout::FusedGateUp:
      return linear(swiglu(linear(h, rows(w_gate_, 0, F)), linear(h, rows(w_gate_, F, 2 * F))),
                    w_down_);
    case MlpLayout::FusedUpGate:
      return linear(swiglu(linear(h, rows(w_gate_, F, 2 * F)), linear(h, rows(w_gate_, 0, F))),
                    w_down_);
    case MlpLayout::None:
      break;
  }
  fail("block has no MLP");
}

Var Block::forward(const Var& x, int64_t B, int64_t T, int64_t pos0, float p, uint64_t seed) {
  Var h = mixer_->forward(rmsnorm(x, norm_, eps_), B, T, pos0);  // (B, T, d)
  Var x1 = add(x, dropout(h, p, seed + 1));
  if (spec_.mlp.layout == MlpLayout::None) return x1;
  return add(x1, dropout(mlp(rmsnorm(x1, mlp_norm_, eps_)), p, seed + 2));
}

Var Block::forward_cached(const Var& x, const SeqBatch& batch, LayerState& state) {
  Var x1 = add(x, mixer_->forward_cached(rmsnorm(x, norm_, eps_), batch, state));  // (rows, d)
  if (spec_.mlp.layout == MlpLayout::None) return x1;
  return add(x1, mlp(rmsnorm(x1, mlp_norm_, eps_)));
}

}  // namespace pf
