#include "tensor/dtype_convert.h"

#include <bit>

namespace pf {

// binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0x1F) {
    // Inf or NaN; the payload is moved to the top of the f32 mantissa.
    bits = sign | 0x7F800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {
    // Subnormal: value = mant * 2^-24; normalize so the leading 1 becomes implicit.
    int e = -1;
    do {
      mant <<= 1;
      ++e;
    } while ((mant & 0x400u) == 0);
    // Now bit 10 of mant is the implicit 1 and the value is 1.xxx * 2^(-15 - e).
    bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3FFu) << 13);
  }
  return std::bit_cast<float>(bits);
}

uint16_t f32_to_f16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t exp = (x >> 23) & 0xFFu;
  const uint32_t mant = x & 0x7FFFFFu;
  if (exp == 0xFF) {
    if (mant == 0) return sign | 0x7C00u;
    // Keep the top payload bits and force the quiet bit so the result never becomes inf.
    return static_cast<uint16_t>(sign | 0x7C00u | 0x200u | (mant >> 13));
  }
  // Unbiased exponent; f32 subnormals are far below the f16 range and round to zero.
  const int e = static_cast<int>(exp) - 127;
  if (e > 15) return sign | 0x7C00u;  // overflow to inf
  if (e >= -14) {
    // Normal f16: drop 13 mantissa bits with round to nearest even. A carry out of the
    // mantissa correctly bumps the exponent, and from 0x7BFF up to 0x7C00 (inf).
    uint32_t h = (static_cast<uint32_t>(e + 15) << 10) | (mant >> 13);
    const uint32_t rem = mant & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  // Subnormal f16 (or zero): value = m * 2^-24 with m = (1.mant) * 2^(e + 24).
  if (e < -25) return sign;                // below half the smallest subnormal: rounds to zero
  const uint32_t full = mant | 0x800000u;  // 24-bit significand; value = full * 2^(e - 23)
  const int shift = -e - 1;                // m = full >> shift, shift in [14, 24]
  uint32_t m = full >> shift;
  const uint32_t rem = full & ((1u << shift) - 1u);
  const uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (m & 1u))) ++m;  // may carry into the smallest normal
  return static_cast<uint16_t>(sign | m);
}

// bfloat16 is the top half of an f32.
float bf16_to_f32(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

uint16_t f32_to_bf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7F800000u) == 0x7F800000u && (x & 0x7FFFFFu) != 0) {
    // NaN: truncating could clear every payload bit and produce inf, so set the quiet bit.
    return static_cast<uint16_t>((x >> 16) | 0x40u);
  }
  // Round to nearest even; overflow carries into the exponent and yields inf as IEEE requires.
  const uint32_t rounding = 0x7FFFu + ((x >> 16) & 1u);
  return static_cast<uint16_t>((x + rounding) >> 16);
}

}  // namespace pf
