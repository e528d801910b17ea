// Decode-time int8 products as llama.cpp does them: the few activation rows are quantised to
// int8 per group of 32 (one f32 scale each), and each group's dot product is computed in
// integers (AVX512-VNNI vpdpbusd, or AVX2 vpmaddubsw), then scaled once. Four to eight
// times fewer instructions per weight than widening the weights to f32, so decode is bound
// by memory bandwidth rather than by conversion.
#pragma once
#include <cstdint>

namespace pf::cpu {

// True when this build has an integer path (AVX2 or AVX512-VNNI) for q8_gemv.
bool q8_int_dot_available();

// y(M, N) = x(M, K) W^T (+ beta y) for W int8 (N, K) with one scale per 32 inputs (scales
// (N, K/32)); K a multiple of 32. x is quantised per 32 values first, so the result is that
// of the dequantised product up to the activations' rounding (relative 2^-8 per value).
void q8_gemv(int64_t M, int64_t N, int64_t K, const float* x, const int8_t* W,
             const float* scales, float beta, float* y);

// The activation quantisation of q8_gemv, exposed for tests: q[i] = round(x[i] / s[g]) with
// s[g] = max |x| over group g / 127.
void quantize_activations_q8(const float* x, int64_t K, int8_t* q, float* s);

}  // namespace pf::cpu
