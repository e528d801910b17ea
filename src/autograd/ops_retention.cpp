#include "autograd/ops_retention.h"

#include "base/error.h"

namespace pf {

namespace {
float* grad_or_null(const Var& v) { return v.requires_grad() ? v.grad().data() : nullptr; }
}  // namespace

Var retention(const Var& q, const Var& k, const Var& v, const Tensor& gamma, RetForm form,
              int64_t chunk) {
  const char* op = "retention";
  PF_CHECK(q.defined() && k.defined() && v.defined() && gamma.defined(), op,
           ": q, k, v and gamma must all be defined");
  PF_CHECK(q.value().dim() == 4, op, ": q must be (B, T, H, dk), got ", shape_str(q.shape()));
  PF_CHECK(k.shape() == q.shape(), op, ": k ", shape_str(k.shape()), " must match q ",
           shape_str(q.shape()));
  const int64_t B = q.shape()[0], T = q.shape()[1], H = q.shape()[2], dk = q.shape()[3];
  PF_CHECK(v.value().dim() == 4 && v.shape()[0] == B && v.shape()[1] == T && v.shape()[2] == H, op,
           ": v ", shape_str(v.shape()), " must be (B, T, H, dv) = (", B, ", ", T, ", ", H,
           ", dv)");
  PF_CHECK(gamma.shape() == Shape{H}, op, ": gamma ", shape_str(gamma.shape()), " must be (H) = (",
           H, ")");
  PF_CHECK(form == RetForm::Parallel || chunk >= 1, op, ": chunk must be >= 1, got ", chunk);
  PF_CHECK(q.value().is_contiguous() && k.value().is_contiguous() && v.value().is_contiguous() &&
               gamma.is_contiguous(),
           op, ": q, k, v and gamma must be contiguous");
  const cpu::RetShape s{B, T, H, dk, v.shape()[3]};
  Var y(Tensor::empty(v.shape()));
  cpu::retention_fwd(s, form, chunk, q.data(), k.data(), v.data(), gamma.data(), y.data());
  if (needs_grad({&q, &k, &v})) {
    y.set_requires_grad(true);
    Tape::active()->record([q, k, v, gamma, y, s, form, chunk] {
      cpu::retention_bwd(s, form, chunk, q.data(), k.data(), v.data(), gamma.data(),
                         y.grad().data(), grad_or_null(q), grad_or_null(k), grad_or_null(v));
    });
  }
  return y;
}

}  // namespace pf
