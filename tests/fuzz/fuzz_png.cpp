// PNG images and gzip streams: any bytes give an image (or data) or a pf::Error, never a
// crash, a hang or an unbounded allocation.
#include "data/png_file.h"
#include "fuzz/fuzz_util.h"
#include "io/gzip.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  pf::fuzz::expect_clean([&] {
    const pf::GrayImage g = pf::parse_png_gray(bytes, "fuzz.png");
    (void)pf::format_png_gray(g);
  });
  pf::fuzz::expect_clean([&] { (void)pf::gunzip(bytes, "fuzz.gz", 1 << 24); });
  return 0;
}
