// IDX image and label files: any bytes give an IdxArray or a pf::Error, never a crash.
#include "data/idx_file.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  pf::fuzz::expect_clean([&] {
    const pf::IdxArray a = pf::parse_idx(bytes, "fuzz.idx");
    (void)pf::format_idx(a);
  });
  return 0;
}
