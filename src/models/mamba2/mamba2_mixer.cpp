// Mamba-2 mixer (Dao & Gu 2024): in_proj -> [z, xBC, dt]; causal conv + SiLU over xBC;
// SSD over heads of size headdim with scalar decay per head; gated RMSNorm with z;
// out_proj.
#include <cmath>

#include "autograd/ops.h"
#include "autograd/ops_ssd.h"
#include "autograd/ops_ssm.h"
#include "base/error.h"
#include "kernels/cpu/conv1d_causal.h"
#include "kernels/cpu/ssd.h"
#include "models/mamba/mixer.h"

namespace pf {

namespace {

class Mamba2Mixer : public Mixer {
 public:
  Mamba2Mixer(const MambaConfig& c, int64_t layer, Rng& rng) : c_(c) {
    const int64_t d = c.d_model, di = c.d_inner(), H = c.nheads(), K = c.d_conv;
    const int64_t conv_dim = di + 2 * c.ngroups * c.d_state;
    in_proj_ = uniform_fan_in({2 * di + 2 * c.ngroups * c.d_state + H, d}, d, rng);
    conv_w_ = uniform_fan_in({conv_dim, 1, K}, K, rng);
    conv_b_ = uniform_fan_in({conv_dim}, K, rng);
    dt_bias_ = mamba_dt_bias(H, rng);
    Tensor a = Tensor::empty({H});  // A = -exp(A_log) with A ~ U[1, 16]
    for (int64_t h = 0; h < H; ++h) a.data()[h] = std::log(rng.uniform(1.0f, 16.0f));
    A_log_ = Var(a, true);
    D_ = constant_param({H}, 1.0f);
    norm_w_ = constant_param({di}, 1.0f);
    out_proj_ = rescaled_out_proj(d, di, c.n_layer, rng);
    (void)layer;
  }

  void visit(const std::string& p, const ParamVisitor& visit) override {
    visit(p + "in_proj.weight", in_proj_, ParamKind::Matrix);
    visit(p + "conv1d.weight", conv_w_, ParamKind::Matrix);
    visit(p + "conv1d.bias", conv_b_, ParamKind::Bias);
    visit(p + "dt_bias", dt_bias_, ParamKind::Bias);
    visit(p + "A_log", A_log_, ParamKind::NoDecay);
    visit(p + "D", D_, ParamKind::NoDecay);
    visit(p + "norm.weight", norm_w_, ParamKind::Norm);
    visit(p + "out_proj.weight", out_proj_, ParamKind::Matrix);
  }

  Var forward(const Var& h, int64_t B, int64_t L) override {
    const int64_t di = c_.d_inner(), H = c_.nheads(), P = c_.headdim, G = c_.ngroups,
                  N = c_.d_state, GN = G * N;
    Var zxd = linear(h, in_proj_);  // (B, L, 2*di + 2*G*N + H): z, xBC, dt
    // Conv, SSD, the gated norm and out_proj are recomputed in the backward: only the
    // in_proj output and the block output are stored (see the Mamba-1 mixer).
    auto inner = [this, B, L, di, H, P, G, N, GN](const Var& zxd_in) {
      auto parts = split_last(zxd_in, {di, di + 2 * GN, H});
      Var xbc = silu(conv1d_causal(parts[1], reshape(conv_w_, {di + 2 * GN, c_.d_conv}), conv_b_));
      auto xs = split_last(xbc, {di, GN, GN});  // x (B, L, di), B, C (B, L, G*N)
      Var y = ssd(reshape(xs[0], {B, L, H, P}), parts[2], dt_bias_, A_log_,
                  reshape(xs[1], {B, L, G, N}), reshape(xs[2], {B, L, G, N}), D_, c_.chunk_size);
      y = gated_rmsnorm(reshape(y, {B, L, di}), parts[0], norm_w_, G,
                        static_cast<float>(c_.norm_eps));  // (B, L, di)
      return linear(y, out_proj_);                         // (B, L, d)
    };
    return checkpoint(inner, zxd);
  }

  Var forward_inference(const Var& h, int64_t n, MixerState& st) override {
    const int64_t di = c_.d_inner(), H = c_.nheads(), P = c_.headdim, G = c_.ngroups,
                  N = c_.d_state, GN = G * N, K = c_.d_conv, cd = di + 2 * GN;
    Tensor& conv_state = st.tensors[0].second;  // (1, cd, K)
    Tensor& ssm_state = st.tensors[1].second;   // (1, H, P, N)
    auto zxd = split_last(linear(h, in_proj_), {di, cd, H});
    Var xbc(Tensor::empty({1, n, cd}));
    if (n == 1) {
      cpu::conv1d_causal_step(1, cd, K, zxd[1].data(), conv_w_.data(), conv_b_.data(),
                              conv_state.data(), xbc.data());
    } else {
      Tensor prev = conv_state.clone();
      cpu::conv1d_causal_fwd(1, n, cd, K, zxd[1].data(), conv_w_.data(), conv_b_.data(),
                             prev.data(), xbc.data(), conv_state.data());
    }
    xbc = silu(xbc);
    auto xs = split_last(xbc, {di, GN, GN});
    Var y(Tensor::empty({1, n, di}));
    const cpu::SsdShape s{1, n, H, P, G, N};
    if (n == 1) {
      cpu::ssd_step(s, xs[0].data(), zxd[2].data(), dt_bias_.data(), A_log_.data(), xs[1].data(),
                    xs[2].data(), D_.data(), ssm_state.data(), y.data());
    } else {
      Tensor h0 = ssm_state.clone();
      cpu::ssd_fwd(s, c_.chunk_size, xs[0].data(), zxd[2].data(), dt_bias_.data(), A_log_.data(),
                   xs[1].data(), xs[2].data(), D_.data(), h0.data(), y.data(), ssm_state.data());
    }
    y = gated_rmsnorm(y, zxd[0], norm_w_, G, static_cast<float>(c_.norm_eps));
    return linear(y, out_proj_);
  }

  MixerState new_state() const override {
    const int64_t cd = c_.d_inner() + 2 * c_.ngroups * c_.d_state;
    return MixerState{{{"conv_state", Tensor::zeros({1, cd, c_.d_conv})},
                       {"ssm_state", Tensor::zeros({1, c_.nheads(), c_.headdim, c_.d_state})}}};
  }

  int64_t state_bytes() const override {
    const int64_t cd = c_.d_inner() + 2 * c_.ngroups * c_.d_state;
    return (cd * c_.d_conv + c_.nheads() * c_.headdim * c_.d_state) *
           static_cast<int64_t>(sizeof(float));
  }

  double extra_flops_per_token() const override {
    // Recurrent view: state update and readout cost ~4 FLOPs per state element.
    return 4.0 * c_.nheads() * c_.headdim * c_.d_state +
           2.0 * c_.d_conv * (c_.d_inner() + 2 * c_.ngroups * c_.d_state);
  }

 private:
  MambaConfig c_;
  Var in_proj_;   // (2*di + 2*G*N + H, d)
  Var conv_w_;    // (di + 2*G*N, 1, K)
  Var conv_b_;    // (di + 2*G*N)
  Var dt_bias_;   // (H)
  Var A_log_;     // (H)
  Var D_;         // (H)
  Var norm_w_;    // (di)
  Var out_proj_;  // (d, di)
};

}  // namespace

std::unique_ptr<Mixer> make_mamba2_mixer(const MambaConfig& c, int64_t layer, Rng& rng) {
  return std::make_unique<Mamba2Mixer>(c, layer, rng);
}

}  // namespace pf
