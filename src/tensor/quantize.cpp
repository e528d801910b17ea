#include "tensor/quantize.h"

#include <cmath>
#include <cstring>

#include "base/error.h"
#include "tensor/dtype_convert.h"

namespace pf {

WeightFormat parse_weight_format(const std::string& s) {
  if (s == "f32") return WeightFormat::F32;
  if (s == "bf16") return WeightFormat::BF16;
  if (s == "int8") return WeightFormat::Int8;
  fail("unknown weight format '", s, "' (expected f32, bf16 or int8)");
}

const char* weight_format_name(WeightFormat f) {
  switch (f) {
    case WeightFormat::F32:
      return "f32";
    case WeightFormat::BF16:
      return "bf16";
    case WeightFormat::Int8:
      return "int8";
  }
  return "?";
}

int64_t q8_group_for(int64_t cols) { return cols % kQ8Group == 0 ? kQ8Group : cols; }

Tensor to_bf16(const Tensor& x) {
  const Tensor c = x.contiguous();
  Tensor out = Tensor::empty_typed(c.shape(), DType::BF16);
  const float* src = c.data();
  auto* dst = static_cast<uint16_t*>(out.raw());
  const int64_t n = c.numel();
#pragma omp parallel for schedule(static) if (n > (1 << 20))
  for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
  return out;
}

Tensor quantize_q8(const Tensor& x, int64_t group) {
  const Tensor c = x.contiguous();
  Tensor out = Tensor::empty_typed(c.shape(), DType::Q8, group);
  const float* src = c.data();
  auto* q = static_cast<int8_t*>(out.raw());
  float* scales = out.q8_scales();
  const int64_t groups = c.numel() / group;
#pragma omp parallel for schedule(static) if (groups > 4096)
  for (int64_t g = 0; g < groups; ++g) {
    const float* s = src + g * group;
    float amax = 0.0f;
    for (int64_t i = 0; i < group; ++i) amax = std::max(amax, std::fabs(s[i]));
    const float d = amax / 127.0f;
    const float inv = d > 0.0f ? 1.0f / d : 0.0f;
    scales[g] = d;
    for (int64_t i = 0; i < group; ++i)
      q[g * group + i] = static_cast<int8_t>(std::lrintf(s[i] * inv));  // |s*inv| <= 127
  }
  return out;
}

Tensor convert_weight(const Tensor& x, WeightFormat f) {
  PF_CHECK(x.dtype() == DType::F32, "convert_weight: expects f32 values, got ",
           dtype_name(x.dtype()));
  switch (f) {
    case WeightFormat::F32:
      return x;
    case WeightFormat::BF16:
      return to_bf16(x);
    case WeightFormat::Int8:
      PF_CHECK(x.dim() >= 1, "convert_weight: int8 needs at least one dimension");
      return quantize_q8(x, q8_group_for(x.shape().back()));
  }
  return x;
}

Tensor to_f32(const Tensor& x) {
  if (x.dtype() == DType::F32) return x.clone();
  return Tensor::from(x.shape(), x.to_vector());
}

WeightFormat weight_format_of(const Tensor& t) {
  switch (t.dtype()) {
    case DType::BF16:
      return WeightFormat::BF16;
    case DType::Q8:
      return WeightFormat::Int8;
    default:
      return WeightFormat::F32;
  }
}

}  // namespace pf
