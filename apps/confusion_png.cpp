#include "apps/confusion_png.h"

#include <algorithm>

#include "data/png_file.h"

namespace pf::cli {

std::string confusion_png(const std::vector<int64_t>& cm, int64_t K) {
  const int64_t cell = std::max<int64_t>(8, 400 / K), side = K * cell + 1;
  std::vector<uint8_t> rgb(side * side * 3, 160);  // grid lines: grey
  for (int64_t r = 0; r < K; ++r) {
    int64_t total = 0;
    for (int64_t c = 0; c < K; ++c) total += cm[r * K + c];
    for (int64_t c = 0; c < K; ++c) {
      const double f = total > 0 ? double(cm[r * K + c]) / total : 0.0;
      // White to dark blue off the diagonal, white to dark green on it.
      const uint8_t hi = static_cast<uint8_t>(255 - 215 * f), lo = static_cast<uint8_t>(255 - 255 * f);
      const uint8_t px[3] = {lo, r == c ? hi : lo, r == c ? lo : hi};
      for (int64_t y = r * cell + 1; y < (r + 1) * cell; ++y)
        for (int64_t x = c * cell + 1; x < (c + 1) * cell; ++x)
          std::copy(px, px + 3, rgb.begin() + (y * side + x) * 3);
    }
  }
  return format_png_rgb(rgb, side, side);
}

}  // namespace pf::cli
