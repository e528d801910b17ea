// The instruction sets this CPU and OS offer (cpuid + xgetbv), for `info`, `--version` and the
// choice of bf16 compute.
#pragma once
#include <string>

namespace pf {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vnni = false;
  bool avx512_bf16 = false;  // vdpbf16ps: native bf16 dot products
  bool amx_bf16 = false;     // AMX tiles with bf16
  bool avx_vnni = false;
  std::string brand;  // the CPU's name string
};

const CpuFeatures& cpu_features();
// "avx2 fma f16c avx512f ..." (those present).
std::string cpu_feature_list();
// True when the CPU computes bf16 products natively (AVX512_BF16 or AMX-BF16).
bool cpu_has_native_bf16();
// The instruction sets of this build (from the compiler's target macros).
std::string build_feature_list();

}  // namespace pf
