// Mamba-1 mixer (Gu & Dao 2023): in_proj -> causal depthwise conv + SiLU -> x_proj
// (dt, B, C) -> selective scan -> gate with SiLU(z) -> out_proj.
#include <cmath>

#include "autograd/ops.h"
#include "autograd/ops_ssm.h"
#include "base/error.h"
#include "kernels/cpu/selective_scan.h"
#include "models/mixers/cached_ops.h"
#include "models/mixers/mamba.h"

namespace pf {

Var mamba_dt_bias(int64_t n, Rng& rng) {
  const double dt_min = 1e-3, dt_max = 1e-1, floor = 1e-4;
  Tensor t = Tensor::empty({n});
  for (int64_t i = 0; i < n; ++i) {
    double dt = std::exp(rng.uniform() * (std::log(dt_max) - std::log(dt_min)) + std::log(dt_min));
    dt = std::max(dt, floor);
    t.data()[i] = static_cast<float>(dt + std::log(-std::expm1(-dt)));  // softplus^-1(dt)
  }
  return Var(t, true);
}

Var uniform_fan_in(const Shape& shape, int64_t fan_in, Rng& rng) {
  const float bound = 1.0f / std::sqrt(static_cast<float>(fan_in));
  Tensor t = Tensor::empty(shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = rng.uniform(-bound, bound);
  return Var(t, true);
}

Var rescaled_out_proj(int64_t d, int64_t di, int64_t n_layer, Rng& rng) {
  Var w = uniform_fan_in({d, di}, di, rng);
  const float r = 1.0f / std::sqrt(static_cast<float>(n_layer));
  for (int64_t i = 0; i < w.value().numel(); ++i) w.data()[i] *= r;
  return w;
}

namespace {

class Mamba1Mixer : public Mixer {
 public:
  Mamba1Mixer(const Mamba1Spec& c, Rng& rng) : c_(c) {
    const int64_t d = c.d, di = c.d_inner, N = c.d_state, K = c.d_conv, R = c.dt_rank;
    in_proj_ = uniform_fan_in({2 * di, d}, d, rng);
    conv_w_ = uniform_fan_in({di, 1, K}, K, rng);
    conv_b_ = uniform_fan_in({di}, K, rng);
    x_proj_ = uniform_fan_in({R + 2 * N, di}, di, rng);
    // dt_proj.weight ~ U(+-dt_rank^-0.5); its bias makes softplus(bias) a useful dt.
    const float s = 1.0f / std::sqrt(static_cast<float>(R));
    Tensor w = Tensor::empty({di, R});
    for (int64_t i = 0; i < w.numel(); ++i) w.data()[i] = rng.uniform(-s, s);
    dt_w_ = Var(w, true);
    dt_b_ = mamba_dt_bias(di, rng);
    Tensor a = Tensor::empty({di, N});  // A_log[c, n] = log(n + 1): S4D-real init
    for (int64_t ch = 0; ch < di; ++ch)
      for (int64_t n = 0; n < N; ++n) a.data()[ch * N + n] = std::log(static_cast<float>(n + 1));
    A_log_ = Var(a, true);
    D_ = constant_param({di}, 1.0f);
    out_proj_ = rescaled_out_proj(d, di, c.n_layer, rng);
  }

  void visit(const std::string& p, const ParamVisitor& visit) override {
    visit(p + "in_proj.weight", in_proj_, ParamKind::Matrix);
    visit(p + "conv1d.weight", conv_w_, ParamKind::Matrix);
    visit(p + "conv1d.bias", conv_b_, ParamKind::Bias);
    visit(p + "x_proj.weight", x_proj_, ParamKind::Matrix);
    visit(p + "dt_proj.weight", dt_w_, ParamKind::Matrix);
    visit(p + "dt_proj.bias", dt_b_, ParamKind::Bias);
    visit(p + "A_log", A_log_, ParamKind::NoDecay);
    visit(p + "D", D_, ParamKind::NoDecay);
    visit(p + "out_proj.weight", out_proj_, ParamKind::Matrix);
  }

  Var forward(const Var& h, int64_t, int64_t, int64_t) override {
    const int64_t di = c_.d_inner, N = c_.d_state, R = c_.dt_rank;
    Var xz = linear(h, in_proj_);  // (B, L, 2*di)
    // Everything after in_proj is recomputed in the backward (the official fused kernel
    // recomputes the conv and scan too): only xz and the block output are stored, not the
    // conv, dt, scan and gate activations, which keeps training memory below the
    // Transformer's at equal parameters.
    auto inner = [this, di, N, R](const Var& xz_in) {
      auto parts = split_last(xz_in, {di, di});  // x, z: (B, L, di)
      Var xc = silu(conv1d_causal(parts[0], reshape(conv_w_, {di, c_.d_conv}), conv_b_));
      auto dbc = split_last(linear(xc, x_proj_), {R, N, N});              // (B, L, R|N|N)
      Var dt = linear(dbc[0], dt_w_);                                     // (B, L, di)
      Var y = selective_scan(xc, dt, dt_b_, A_log_, dbc[1], dbc[2], D_);  // (B, L, di)
      return linear(swiglu(parts[1], y), out_proj_);                      // (B, L, d)
    };
    return checkpoint(inner, xz);
  }

  Var forward_cached(const Var& h, const SeqBatch& batch, LayerState& state) override {
    auto& st = dynamic_cast<RecurrentState&>(state);  // 0: conv (S, di, K), 1: ssm (S, di, N)
    const int64_t di = c_.d_inner, N = c_.d_state, R = c_.dt_rank, K = c_.d_conv;
    const int64_t rows = batch.rows();
    auto xz = split_last(linear(h, in_proj_), {di, di});                   // x, z: (rows, di)
    Var xc = conv1d_cached(xz[0], di, K, conv_w_, conv_b_, st, 0, batch);  // (rows, di)
    xc = silu(xc);
    auto dbc = split_last(linear(xc, x_proj_), {R, N, N});  // (rows, R|N|N)
    Var dt = linear(dbc[0], dt_w_);                         // (rows, di)
    Var y(Tensor::empty({rows, di}));                       // (rows, di)
    for (const RowGroup& g : batch.groups()) {
      const int64_t o = g.row0 * di, on = g.row0 * N;
      if (g.decode) {
        cpu::selective_scan_step(g.rows, di, N, xc.data() + o, dt.data() + o, dt_b_.data(),
                                 A_log_.data(), dbc[1].data() + on, dbc[2].data() + on, D_.data(),
                                 st.base(1), y.data() + o, g.slots.data());
      } else {
        float* slot = st.at(1, g.slots[0]);
        const std::vector<float> h0(slot, slot + di * N);
        cpu::selective_scan_fwd(cpu::ScanShape{1, g.rows, di, N}, xc.data() + o, dt.data() + o,
                                dt_b_.data(), A_log_.data(), dbc[1].data() + on, dbc[2].data() + on,
                                D_.data(), h0.data(), y.data() + o, slot);
      }
    }
    return linear(swiglu(xz[1], y), out_proj_);  // (rows, d)
  }

  std::unique_ptr<LayerState> new_state(int64_t slots, int64_t) const override {
    return std::make_unique<RecurrentState>(
        slots, std::vector<std::pair<std::string, Shape>>{{"conv_state", {c_.d_inner, c_.d_conv}},
                                                          {"ssm_state", {c_.d_inner, c_.d_state}}});
  }
  bool bounded_state() const override { return true; }
  int64_t state_bytes(int64_t) const override {
    return c_.d_inner * (c_.d_conv + c_.d_state) * static_cast<int64_t>(sizeof(float));
  }
  double flops_per_token(int64_t) const override {
    // Projections, then conv (2K per channel) + scan (~6N per channel: decay, input,
    // output) + gating.
    const double di = static_cast<double>(c_.d_inner);
    const double proj =
        2.0 * di * c_.d + di * (c_.dt_rank + 2 * c_.d_state) + di * c_.dt_rank + c_.d * di;
    return 2.0 * proj + di * (2.0 * c_.d_conv + 6.0 * c_.d_state + 6.0);
  }

 private:
  Mamba1Spec c_;
  Var in_proj_;   // (2*di, d)
  Var conv_w_;    // (di, 1, K)
  Var conv_b_;    // (di)
  Var x_proj_;    // (R + 2N, di)
  Var dt_w_;      // (di, R)
  Var dt_b_;      // (di)
  Var A_log_;     // (di, N)
  Var D_;         // (di)
  Var out_proj_;  // (d, di)
};

}  // namespace

std::unique_ptr<Mixer> make_mamba1_mixer(const Mamba1Spec& s, Rng& rng) {
  return std::make_unique<Mamba1Mixer>(s, rng);
}

}  // namespace pf
