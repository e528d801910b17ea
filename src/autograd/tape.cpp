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
  for (auto it = ops_.rbegin(); it != ops_.rend(); ++it) (*it)();
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
