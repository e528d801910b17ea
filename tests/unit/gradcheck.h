// Finite-difference gradient check for differentiable ops. The op under test is a
// lambda from input Vars to one output Var; the scalar loss is sum(out * R) with a
// fixed random R, so every output element's backward path is exercised.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <sstream>
#include <vector>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "base/rng.h"
#include "base/threads.h"

namespace pf::test_util {

// Uniform random tensor in [lo, hi); deterministic from the seed.
inline Tensor random_tensor(const Shape& shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  Rng rng(seed);
  Tensor t = Tensor::empty(shape);
  float* p = t.data();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = rng.uniform(lo, hi);
  return t;
}

inline Var random_var(const Shape& shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  return Var(random_tensor(shape, seed, lo, hi), /*requires_grad=*/true);
}

// Runs the scope on one OpenMP thread. Finite differences call tiny forwards thousands of
// times; on a loaded 2-core machine every parallel region can then stall for a timeslice.
class SingleThreadScope {
 public:
  SingleThreadScope() : prev_(num_threads()) { set_num_threads(1); }
  ~SingleThreadScope() { set_num_threads(prev_); }
  SingleThreadScope(const SingleThreadScope&) = delete;
  SingleThreadScope& operator=(const SingleThreadScope&) = delete;

 private:
  int prev_;
};

struct GradcheckOptions {
  float eps = 1e-2f;   // central-difference step (f32 forward, so not smaller)
  double atol = 2e-3;  // |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 2e-2;
  // Above this many elements an input is checked on an evenly spread subset.
  int64_t max_elems_per_input = 4096;
  uint64_t seed = 0x5eed;
};

using OpFn = std::function<Var(const std::vector<Var>&)>;

// Checks d(sum(f(inputs) * R))/d(input) from the tape against central differences.
// Every input must be a leaf Var with requires_grad set.
inline ::testing::AssertionResult gradcheck(const std::vector<Var>& inputs, const OpFn& f,
                                            const GradcheckOptions& opt = {}) {
  // Forward once without a tape to learn the output size and draw R.
  int64_t n = 0;
  {
    NoGradScope ng;
    n = f(inputs).value().numel();
  }
  const Tensor r = random_tensor({1, n}, opt.seed);
  const float* rp = r.data();
  auto loss_no_tape = [&]() {
    NoGradScope ng;
    const Var out = f(inputs);
    const std::vector<float> o = out.value().to_vector();
    double s = 0.0;  // accumulate in double so the difference is not swamped by rounding
    for (int64_t i = 0; i < n; ++i) s += static_cast<double>(o[i]) * rp[i];
    return s;
  };

  // Analytic gradients: loss = linear(out as (1, n), R as (1, n)) = sum(out * R), a (1, 1).
  for (const Var& x : inputs) x.zero_grad();
  {
    Tape tape;
    TapeScope scope(tape);
    const Var out = f(inputs);
    if (!out.requires_grad())
      return ::testing::AssertionFailure() << "output does not require grad (nothing recorded)";
    const Var loss = linear(reshape(out, {1, n}), Var(r));
    tape.backward(loss);
  }
  std::vector<std::vector<float>> analytic;
  for (const Var& x : inputs) analytic.push_back(x.grad().to_vector());

  std::ostringstream msg;
  int bad = 0;
  double worst = 0.0;
  // The analytic pass above ran threaded; the numeric reference need not.
  SingleThreadScope single;
  for (size_t a = 0; a < inputs.size(); ++a) {
    float* p = inputs[a].value().data();
    const int64_t m = inputs[a].value().numel();
    const int64_t step =
        std::max<int64_t>(1, (m + opt.max_elems_per_input - 1) / opt.max_elems_per_input);
    for (int64_t i = 0; i < m; i += step) {
      const float orig = p[i];
      p[i] = orig + opt.eps;
      const double lp = loss_no_tape();
      p[i] = orig - opt.eps;
      const double lm = loss_no_tape();
      p[i] = orig;
      // Divide by the step actually taken in f32, not the nominal eps.
      const double h = static_cast<double>(orig + opt.eps) - static_cast<double>(orig - opt.eps);
      const double num = (lp - lm) / h;
      const double ana = analytic[a][i];
      const double err = std::fabs(ana - num);
      worst = std::max(worst, err);
      if (err > opt.atol + opt.rtol * std::fabs(num)) {
        if (bad < 8)
          msg << "\n  input " << a << " elem " << i << ": analytic " << ana << " numeric " << num;
        ++bad;
      }
    }
  }
  if (bad)
    return ::testing::AssertionFailure()
           << bad << " gradient mismatches (worst abs err " << worst << "):" << msg.str();
  return ::testing::AssertionSuccess();
}

}  // namespace pf::test_util
