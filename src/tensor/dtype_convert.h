// Scalar conversions between f32 and the 16-bit storage dtypes (IEEE binary16, bfloat16).
// Both directions round to nearest even; NaN stays NaN (quiet), infinities are kept.
#pragma once
#include <cstdint>

namespace pf {

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float bf16_to_f32(uint16_t b);
uint16_t f32_to_bf16(float f);

}  // namespace pf
