// f32 GEMM throughput through oneDNN on this machine, as JSON.
// Usage: bench_gemm [threads]
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "base/threads.h"
#include "bench/bench_common.h"

int main(int argc, char** argv) {
  pf::set_num_threads(argc > 1 ? std::atoi(argv[1]) : 2);
  nlohmann::json out = {{"benchmark", "gemm_f32"}, {"threads", pf::num_threads()}};
  double best = 0;
  for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{1024, 1024, 1024},
                         {2048, 2048, 2048},
                         {4096, 384, 384},
                         {4096, 1024, 384},
                         {512, 768, 768},
                         {512, 3072, 768}}) {
    const double g = pf::bench::gemm_gflops(M, N, K);
    best = std::max(best, g);
    out["shapes"].push_back({{"M", M}, {"N", N}, {"K", K}, {"gflops", g}});
    std::fprintf(stderr, "M=%ld N=%ld K=%ld: %.1f GFLOP/s\n", (long)M, (long)N, (long)K, g);
  }
  out["peak_gflops"] = best;
  std::printf("%s\n", out.dump(2).c_str());
}
