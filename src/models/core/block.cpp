#include "models/core/block.h"

#include "autograd/ops.h"
#include "base/error.h"

namespace pf {

int64_t BlockSpec::param_count(int64_t d) const {
  const int64_t mlp_params = mlp.layout == MlpLayout::None ? 0 : d + 3 * d * mlp.ffn;
  return d + mixer_params + mlp_params;
}

Mlp::Mlp(const MlpSpec& m, int64_t d, Rng& rng) : spec_(m) {
  PF_CHECK(m.layout != MlpLayout::None, "an MLP needs a layout");
  norm_ = constant_param({d}, 1.0f);
  if (m.layout == MlpLayout::Separate) {
    w_gate_ = normal_param({m.ffn, d}, m.init_std, rng);
    w_up_ = normal_param({m.ffn, d}, m.init_std, rng);
  } else {
    w_gate_ = normal_param({2 * m.ffn, d}, m.init_std, rng);
  }
  w_down_ = normal_param({d, m.ffn}, m.out_std, rng);
}

void Mlp::visit(const std::string& p, const ParamVisitor& visit) {
  visit(p + spec_.norm, norm_, ParamKind::Norm);
  visit(p + spec_.gate, w_gate_, ParamKind::Matrix);
  if (spec_.layout == MlpLayout::Separate) visit(p + spec_.up, w_up_, ParamKind::Matrix);
  visit(p + spec_.down, w_down_, ParamKind::Matrix);
}

Var Mlp::residual(const Var& x, float eps, float p, uint64_t seed) const {
  const int64_t F = spec_.ffn;
  const Var h = rmsnorm(x, norm_, eps);
  Var y;
  switch (spec_.layout) {
    case MlpLayout::Separate:
      y = linear(swiglu(linear(h, w_gate_), linear(h, w_up_)), w_down_);
      break;
    case MlpLayout::FusedGateUp:
      y = linear(swiglu(linear(h, rows(w_gate_, 0, F)), linear(h, rows(w_gate_, F, 2 * F))),
                 w_down_);
      break;
    case MlpLayout::FusedUpGate:
      y = linear(swiglu(linear(h, rows(w_gate_, F, 2 * F)), linear(h, rows(w_gate_, 0, F))),
                 w_down_);
      break;
    case MlpLayout::None:
      fail("block has no MLP");
  }
  return add(x, dropout(y, p, seed));
}

Block::Block(const BlockSpec& spec, int64_t d, float eps, Rng& rng) : spec_(spec), eps_(eps) {
  norm_ = constant_param({d}, 1.0f);
  mixer_ = spec.make_mixer(rng);
  if (spec.mlp.layout != MlpLayout::None) mlp_ = std::make_unique<Mlp>(spec.mlp, d, rng);
}

void Block::visit(const ParamVisitor& visit) {
  const std::string& p = spec_.prefix;
  visit(p + spec_.norm, norm_, ParamKind::Norm);
  mixer_->visit(p + spec_.mixer_name, visit);
  if (mlp_) mlp_->visit(p, visit);
}

Var Block::forward(const Var& x, int64_t B, int64_t T, int64_t pos0, float p, uint64_t seed) {
  Var h = mixer_->forward(rmsnorm(x, norm_, eps_), B, T, pos0);  // (B, T, d)
  Var x1 = add(x, dropout(h, p, seed + 1));
  return mlp_ ? mlp_->residual(x1, eps_, p, seed + 2) : x1;
}

Var Block::forward_cached(const Var& x, const SeqBatch& batch, LayerState& state) {
  Var x1 = add(x, mixer_->forward_cached(rmsnorm(x, norm_, eps_), batch, state));  // (rows, d)
  return mlp_ ? mlp_->residual(x1, eps_) : x1;
}

}  // namespace pf
