// Shared benchmark helpers: the f32 GEMM rate measured in the same run, so throughput
// can be reported as a fraction of what the matrix unit sustains on this machine.
#pragma once
#include <vector>

#include "base/timer.h"
#include "kernels/cpu/gemm.h"

namespace pf::bench {

// Sustained GFLOP/s of C(M,N) = A(M,K) B(K,N) in f32 over about `seconds`.
inline double gemm_gflops(int64_t M, int64_t N, int64_t K, double seconds = 1.0) {
  std::vector<float> A(M * K, 0.5f), B(K * N, 0.25f), C(M * N, 0.0f);
  cpu::gemm(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C.data(), N);  // warm-up
  Timer t;
  int64_t reps = 0;
  while (t.seconds() < seconds || reps < 3) {
    cpu::gemm(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C.data(), N);
    ++reps;
  }
  return 2.0 * M * N * K * reps / t.seconds() / 1e9;
}

}  // namespace pf::bench
