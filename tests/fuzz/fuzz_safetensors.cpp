// Safetensors header and data: parse, then read every tensor the header admits.
#include "fuzz/fuzz_util.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = pf::fuzz::write_input(data, size, "model.safetensors");
  pf::fuzz::expect_clean([&] {
    pf::SafetensorsFile f(path);
    for (const std::string& name : f.names()) {
      pf::Tensor t = f.load_f32(name);
      (void)pf::first_nonfinite(t);
    }
  });
  return 0;
}
