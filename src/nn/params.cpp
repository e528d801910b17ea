#include "nn/params.h"

namespace pf {

Var normal_param(const Shape& shape, float std, Rng& rng) {
  Tensor t = Tensor::empty(shape);
  float* d = t.data();
  for (int64_t i = 0; i < t.numel(); ++i) d[i] = static_cast<float>(rng.normal() * std);
  return Var(t, true);
}

Var constant_param(const Shape& shape, float value) {
  return Var(Tensor::full(shape, value), true);
}

}  // namespace pf
