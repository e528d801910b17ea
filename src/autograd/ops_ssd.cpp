#include "autograd/ops_ssd.h"

#include "base/error.h"
#include "kernels/cpu/gated_norm.h"
#include "kernels/cpu/ssd.h"

namespace pf {

namespace {
void check_contig(const Var& v, const char* op, const char* name) {
  PF_CHECK(v.value().is_contiguous(), op, ": ", name, " must be contiguous");
}
void check_shape(const Var& v, const Shape& want, const char* op, const char* name) {
  PF_CHECK(v.shape() == want, op, ": ", name, " has shape ", shape_str(v.shape()), ", expected ",
           shape_str(want));
  check_contig(v, op, name);
}
const float* data_or_null(const Var& v) { return v.defined() ? v.data() : nullptr; }
float* grad_or_null(const Var& v) {
  return v.defined() && v.requires_grad() ? v.grad().data() : nullptr;
}
}  // namespace

Var ssd(const Var& x, const Var& dt, const Var& dt_bias, const Var& A_log, const Var& Bm,
        const Var& Cm, const Var& Dskip, int64_t chunk) {
  PF_CHECK(x.value().dim() == 4 && Bm.value().dim() == 4, "ssd: x ", shape_str(x.shape()),
           " and Bm ", shape_str(Bm.shape()), " must be 4-D");
  cpu::SsdShape s;
  s.B = x.shape()[0], s.L = x.shape()[1], s.H = x.shape()[2], s.P = x.shape()[3];
  s.G = Bm.shape()[2], s.N = Bm.shape()[3];
  PF_CHECK(s.G > 0 && s.H % s.G == 0, "ssd: ", s.H, " heads not divisible by ", s.G, " groups");
  check_contig(x, "ssd", "x");
  check_shape(dt, {s.B, s.L, s.H}, "ssd", "dt");
  check_shape(A_log, {s.H}, "ssd", "A_log");
  check_shape(Bm, {s.B, s.L, s.G, s.N}, "ssd", "Bm");
  check_shape(Cm, {s.B, s.L, s.G, s.N}, "ssd", "Cm");
  if (dt_bias.defined()) check_shape(dt_bias, {s.H}, "ssd", "dt_bias");
  if (Dskip.defined()) check_shape(Dskip, {s.H}, "ssd", "Dskip");
  Var y(Tensor::empty(x.shape()));
  cpu::ssd_fwd(s, chunk, x.data(), dt.data(), data_or_null(dt_bias), A_log.data(), Bm.data(),
               Cm.data(), data_or_null(Dskip), nullptr, y.data(), nullptr);
  if (needs_grad({&x, &dt, &dt_bias, &A_log, &Bm, &Cm, &Dskip})) {
    y.set_requires_grad(true);
    Tape::active()->record([x, dt, dt_bias, A_log, Bm, Cm, Dskip, y, s, chunk] {
      cpu::ssd_bwd(s, chunk, x.data(), dt.data(), data_or_null(dt_bias), A_log.data(), Bm.data(),
                   Cm.data(), data_or_null(Dskip), y.grad().data(), grad_or_null(x),
                   grad_or_null(dt), grad_or_null(dt_bias), grad_or_null(A_log), grad_or_null(Bm),
                   grad_or_null(Cm), grad_or_null(Dskip));
    });
  }
  return y;
}

Var gated_rmsnorm(const Var& x, const Var& z, const Var& w, int64_t groups, float eps) {
  check_contig(x, "gated_rmsnorm", "x");
  check_shape(z, x.shape(), "gated_rmsnorm", "z");
  const int64_t D = x.shape().back(), rows = x.value().numel() / D;
  check_shape(w, {D}, "gated_rmsnorm", "w");
  PF_CHECK(groups > 0 && D % groups == 0, "gated_rmsnorm: dim ", D, " not divisible by ", groups,
           " groups");
  Var y(Tensor::empty(x.shape()));
  Tensor rstd = Tensor::empty({rows, groups});
  cpu::gated_rmsnorm_fwd(rows, D, groups, eps, x.data(), z.data(), w.data(), y.data(), rstd.data());
  if (needs_grad({&x, &z, &w})) {
    y.set_requires_grad(true);
    Tape::active()->record([x, z, w, y, rstd, rows, D, groups] {
      cpu::gated_rmsnorm_bwd(rows, D, groups, x.data(), z.data(), w.data(), rstd.data(),
                             y.grad().data(), grad_or_null(x), grad_or_null(z), grad_or_null(w));
    });
  }
  return y;
}

}  // namespace pf
