// A confusion matrix as a picture: one square per (true, predicted) cell, shaded by the
// share of the true class it holds (white 0 -> dark blue 1; the diagonal in green), with
// a grid so counts can be read off the printed table beside it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pf::cli {

// cm: (K, K) counts, rows the true class -> PNG bytes.
std::string confusion_png(const std::vector<int64_t>& cm, int64_t K);

}  // namespace pf::cli
