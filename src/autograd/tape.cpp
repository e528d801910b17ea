#include "autograd/tape.h"

#include "base/error.h"

namespace pf {

namespace {
thread_local Tape* g_active = nullptr;
}

Var::Var(Tensor value, bool requires_grad) : p_(std::make_shared<VarImpl>()) {
  p_->value = std::move(value);
  p_->requires_grad = requires_grad;
}

Tensor& Var::grad() const {
  if (!p_->grad.defined()) p_->grad = Tensor::zeros(p_->value.shape());
  return p_->grad;
}

void Var::zero_grad() const {
  if (p_->grad.defined()) p_->grad.zero();
}

Tape* Tape::active() { return g_active; }

void Tape::backward(const Var& loss) {
  PF_CHECK(loss.value().numel() == 1, "backward(): loss must be a scalar, got shape ",
           shape_str(loss.shape()));
  PF_CHECK(loss.requires_grad(), "backward(): loss does not depend on any parameter");
  loss.grad().fill(1.0f);
  run_backward();
}

void Tape::backward_from(const Var& out, const Tensor& grad) {
  PF_CHECK(out.requires_grad(), "backward_from(): output does not depend on any parameter");
  out.grad().copy_from(grad);
  run_backward();
}

void Tape::run_backward() {
  // Each closure is dropped once it has run: its captured inputs and outputs (values
  // and gradients) are freed as soon as nothing later needs them, so memory falls
  // during the backward instead of peaking at activations + all their gradients.
  for (auto it = ops_.rbegin(); it != ops_.rend(); ++it) {
    (*it)();
    *it = nullptr;
  }
  ops_.clear();
}

TapeScope::TapeScope(Tape& tape) : prev_(g_active) { g_active = &tape; }
TapeScope::~TapeScope() { g_active = prev_; }
NoGradScope::NoGradScope() : prev_(g_active) { g_active = nullptr; }
NoGradScope::~NoGradScope() { g_active = prev_; }

bool needs_grad(std::initializer_list<const Var*> inputs) {
  if (!g_active) return false;
  for (const Var* v : inputs)
    if (v && v->defined() && v->requires_grad()) return true;
  return false;
}

}  // namespace pf
