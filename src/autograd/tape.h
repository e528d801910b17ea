// Reverse-mode autodiff on a tape. Each differentiable op computes its value with a
// forward kernel and, when a tape is recording, records a closure that calls its
// backward kernel. backward() replays the closures in reverse order.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace pf {

struct VarImpl {
  Tensor value;
  Tensor grad;  // allocated on first use, same shape as value
  bool requires_grad = false;
};

// A value in the graph: a handle to shared VarImpl (copies alias).
class Var {
 public:
  Var() = default;
  explicit Var(Tensor value, bool requires_grad = false);
  bool defined() const { return p_ != nullptr; }
  const Tensor& value() const { return p_->value; }
  Tensor& value() { return p_->value; }
  const Shape& shape() const { return p_->value.shape(); }
  float* data() const { return p_->value.data(); }
  bool requires_grad() const { return p_ && p_->requires_grad; }
  void set_requires_grad(bool r) { p_->requires_grad = r; }
  bool has_grad() const { return p_->grad.defined(); }
  // The gradient buffer, zero-allocated on first access.
  Tensor& grad() const;
  void zero_grad() const;
  VarImpl* impl() const { return p_.get(); }

 private:
  std::shared_ptr<VarImpl> p_;
};

class Tape {
 public:
  // The tape recording on this thread, or null.
  static Tape* active();
  void record(std::function<void()> backward_fn) { ops_.push_back(std::move(backward_fn)); }
  // Seeds d(loss) = 1 (loss must have one element) and runs all closures in reverse.
  void backward(const Var& loss);
  // Runs the closures with d(out) = grad (any shape): used by recomputation.
  void backward_from(const Var& out, const Tensor& grad);
  void clear() { ops_.clear(); }
  size_t size() const { return ops_.size(); }

 private:
  void run_backward();
  std::vector<std::function<void()>> ops_;
};

// Makes `tape` the active tape for the lifetime of the scope.
class TapeScope {
 public:
  explicit TapeScope(Tape& tape);
  ~TapeScope();
  TapeScope(const TapeScope&) = delete;
  TapeScope& operator=(const TapeScope&) = delete;

 private:
  Tape* prev_;
};

// Suspends recording for the lifetime of the scope (inference paths).
class NoGradScope {
 public:
  NoGradScope();
  ~NoGradScope();
  NoGradScope(const NoGradScope&) = delete;
  NoGradScope& operator=(const NoGradScope&) = delete;

 private:
  Tape* prev_;
};

// True when an op on these inputs must be recorded.
bool needs_grad(std::initializer_list<const Var*> inputs);

}  // namespace pf
