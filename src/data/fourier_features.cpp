#include "data/fourier_features.h"

#include <cmath>

#include "base/error.h"

namespace pf {

std::vector<float> fourier_position_features(const FourierSpec& s) {
  const int64_t D = static_cast<int64_t>(s.grid.size()), K = s.bands, C = s.channels();
  PF_CHECK(D >= 1 && D <= 4, "Fourier features: ", D, " axes (1 to 4 supported)");
  PF_CHECK(K >= 1 && K <= 1024, "Fourier features: ", K, " bands (1 to 1024 supported)");
  int64_t points = 1;
  for (int64_t n : s.grid) {
    PF_CHECK(n >= 1 && n <= (int64_t{1} << 20), "Fourier features: axis of ", n, " points");
    points *= n;
    PF_CHECK(points * C <= (int64_t{1} << 31), "Fourier features: grid too large");
  }
  std::vector<float> out(points * C);
  std::vector<int64_t> idx(D, 0);
  std::vector<double> x(D);
  for (int64_t p = 0; p < points; ++p) {
    // Coordinates of point p: linspace(-1, 1, n) per axis (0 when the axis has one point).
    for (int64_t d = 0; d < D; ++d)
      x[d] = s.grid[d] > 1 ? -1.0 + 2.0 * static_cast<double>(idx[d]) / (s.grid[d] - 1) : 0.0;
    float* row = out.data() + p * C;
    int64_t c = 0;
    if (s.concat_pos)
      for (int64_t d = 0; d < D; ++d) row[c++] = static_cast<float>(x[d]);
    for (int pass = 0; pass < 2; ++pass)  // sines, then cosines
      for (int64_t d = 0; d < D; ++d) {
        const double max_freq = s.grid[d] / 2.0;
        for (int64_t k = 0; k < K; ++k) {
          const double f = K > 1 ? 1.0 + (max_freq - 1.0) * k / (K - 1) : 1.0;
          const double a = M_PI * f * x[d];
          row[c++] = static_cast<float>(pass == 0 ? std::sin(a) : std::cos(a));
        }
      }
    for (int64_t d = D - 1; d >= 0; --d) {  // next grid point, last axis fastest
      if (++idx[d] < s.grid[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

}  // namespace pf
