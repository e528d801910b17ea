#include "autograd/ops_ssm.h"

#include "base/error.h"
#include "kernels/cpu/conv1d_causal.h"
#include "kernels/cpu/selective_scan.h"

namespace pf {

namespace {
void check_contig(const Var& v, const char* op, const char* name) {
  PF_CHECK(v.value().is_contiguous(), op, ": ", name, " must be contiguous");
}
// Checks an optional per-channel vector: undefined, or shape (n).
void check_vector(const Var& v, int64_t n, const char* op, const char* name) {
  if (!v.defined()) return;
  PF_CHECK(v.shape() == Shape{n}, op, ": ", name, " has shape ", shape_str(v.shape()),
           ", expected (", n, ")");
  check_contig(v, op, name);
}
const float* data_or_null(const Var& v) { return v.defined() ? v.data() : nullptr; }
// The gradient buffer of v if it wants one, else null.
float* grad_or_null(const Var& v) {
  return v.defined() && v.requires_grad() ? v.grad().data() : nullptr;
}
}  // namespace

Var selective_scan(const Var& u, const Var& dt, const Var& dt_bias, const Var& A_log, const Var& Bm,
                   const Var& Cm, const Var& Dskip) {
  const char* op = "selective_scan";
  PF_CHECK(u.value().dim() == 3, op, ": u must be (B, L, D), got ", shape_str(u.shape()));
  PF_CHECK(dt.shape() == u.shape(), op, ": dt ", shape_str(dt.shape()), " must match u ",
           shape_str(u.shape()));
  const int64_t B = u.shape()[0], L = u.shape()[1], D = u.shape()[2];
  PF_CHECK(A_log.value().dim() == 2 && A_log.shape()[0] == D, op, ": A_log ",
           shape_str(A_log.shape()), " must be (D, N) with D = ", D);
  const int64_t N = A_log.shape()[1];
  for (const Var* v : {&Bm, &Cm})
    PF_CHECK(v->shape() == (Shape{B, L, N}), op, ": B and C must be (B, L, N) = (", B, ", ", L,
             ", ", N, "), got ", shape_str(v->shape()));
  check_contig(u, op, "u");
  check_contig(dt, op, "dt");
  check_contig(A_log, op, "A_log");
  check_contig(Bm, op, "B");
  check_contig(Cm, op, "C");
  check_vector(dt_bias, D, op, "dt_bias");
  check_vector(Dskip, D, op, "D");

  const cpu::ScanShape s{B, L, D, N};
  Var y(Tensor::empty({B, L, D}));
  const bool record = needs_grad({&u, &dt, &dt_bias, &A_log, &Bm, &Cm, &Dskip});
  // Checkpoints let the backward skip re-running the forward (about a third of its time).
  Tensor ckpt = record ? Tensor::empty({cpu::selective_scan_ckpt_floats(s)}) : Tensor();
  cpu::selective_scan_fwd(s, u.data(), dt.data(), data_or_null(dt_bias), A_log.data(), Bm.data(),
                          Cm.data(), data_or_null(Dskip), nullptr, y.data(), nullptr,
                          record ? ckpt.data() : nullptr);
  if (record) {
    y.set_requires_grad(true);
    Tape::active()->record([u, dt, dt_bias, A_log, Bm, Cm, Dskip, y, ckpt, s] {
      cpu::selective_scan_bwd(s, u.data(), dt.data(), data_or_null(dt_bias), A_log.data(),
                              Bm.data(), Cm.data(), data_or_null(Dskip), y.grad().data(),
                              grad_or_null(u), grad_or_null(dt), grad_or_null(dt_bias),
                              grad_or_null(A_log), grad_or_null(Bm), grad_or_null(Cm),
                              grad_or_null(Dskip), ckpt.data());
    });
  }
  return y;
}

Var conv1d_causal(const Var& x, const Var& w, const Var& bias) {
  const char* op = "conv1d_causal";
  PF_CHECK(x.value().dim() == 3, op, ": x must be (B, L, C), got ", shape_str(x.shape()));
  const int64_t B = x.shape()[0], L = x.shape()[1], C = x.shape()[2];
  PF_CHECK(w.value().dim() == 2 && w.shape()[0] == C, op, ": w ", shape_str(w.shape()),
           " must be (C, K) with C = ", C);
  const int64_t K = w.shape()[1];
  check_contig(x, op, "x");
  check_contig(w, op, "w");
  check_vector(bias, C, op, "bias");

  Var y(Tensor::empty({B, L, C}));
  cpu::conv1d_causal_fwd(B, L, C, K, x.data(), w.data(), data_or_null(bias), nullptr, y.data(),
                         nullptr);
  if (needs_grad({&x, &w, &bias})) {
    y.set_requires_grad(true);
    Tape::active()->record([x, w, bias, y, B, L, C, K] {
      cpu::conv1d_causal_bwd(B, L, C, K, x.data(), w.data(), y.grad().data(), grad_or_null(x),
                             grad_or_null(w), grad_or_null(bias));
    });
  }
  return y;
}

}  // namespace pf
