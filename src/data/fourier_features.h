// Fourier position features (Perceiver, Perceiver IO): for a point with coordinates x_d in
// [-1, 1] on each of D axes, K frequency bands f_k = linspace(1, max_res / 2, K) (up to the
// Nyquist frequency of the grid) give sin(pi f_k x_d) and cos(pi f_k x_d); the raw
// coordinates are prepended when concat_pos. Feature order follows deepmind's
// generate_fourier_features: [x_1..x_D, sin(axis 1 bands), ..., sin(axis D bands),
// cos(axis 1 bands), ..., cos(axis D bands)].
#pragma once
#include <cstdint>
#include <vector>

namespace pf {

struct FourierSpec {
  std::vector<int64_t> grid;  // points per axis, e.g. (28, 28); the resolution per axis
  int64_t bands = 16;         // K
  bool concat_pos = true;
  int64_t channels() const {
    const int64_t D = static_cast<int64_t>(grid.size());
    return (concat_pos ? D : 0) + 2 * D * bands;
  }
};

// Features of every grid point, row-major over the grid: (prod(grid), channels()).
// max_res per axis is that axis's grid size.
std::vector<float> fourier_position_features(const FourierSpec& s);

}  // namespace pf
