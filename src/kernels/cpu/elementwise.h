// Elementwise kernels on contiguous f32 buffers of n elements. Backward kernels
// accumulate (+=) into the gradient buffers they are given.
#pragma once
#include <cstdint>

namespace pf::cpu {

void add_fwd(int64_t n, const float* a, const float* b, float* y);        // y = a + b
void mul_fwd(int64_t n, const float* a, const float* b, float* y);        // y = a * b
void mul_bwd(int64_t n, const float* a, const float* b, const float* dy,  // da += dy*b, db += dy*a
             float* da, float* db);
void scale_fwd(int64_t n, float s, const float* a, float* y);  // y = s * a
void axpy(int64_t n, float s, const float* x, float* y);       // y += s * x

// Exact GELU: x * Phi(x).
void gelu_fwd(int64_t n, const float* x, float* y);
void gelu_bwd(int64_t n, const float* x, const float* dy, float* dx);
void silu_fwd(int64_t n, const float* x, float* y);
void silu_bwd(int64_t n, const float* x, const float* dy, float* dx);
// SwiGLU: y = silu(g) * u, fused so the MLP stores one fewer activation.
void swiglu_fwd(int64_t n, const float* g, const float* u, float* y);
void swiglu_bwd(int64_t n, const float* g, const float* u, const float* dy, float* dg, float* du);

// Inverted dropout: keep with prob 1-p, scale kept values by 1/(1-p). The mask is a
// pure function of (seed, index), so backward regenerates it instead of storing it.
void dropout_fwd(int64_t n, float p, uint64_t seed, const float* x, float* y);
void dropout_bwd(int64_t n, float p, uint64_t seed, const float* dy, float* dx);
bool dropout_keep(float p, uint64_t seed, int64_t i);

}  // namespace pf::cpu
