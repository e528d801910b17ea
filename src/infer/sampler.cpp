#include "infer/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "base/checks.h"
#include "base/error.h"

namespace pf {

void check_sampling(const SamplingOptions& opt) {
  check_range("--temperature", static_cast<double>(opt.temperature), 0.0, 100.0);
  check_range("--top-k", opt.top_k, 0, int64_t{1} << 24);
  check_range("--top-p", static_cast<double>(opt.top_p), 0.0, 1.0, /*open_lo=*/true);
}

int32_t sample_token(const float* logits, int64_t V, const SamplingOptions& opt, Rng& rng) {
  check_sampling(opt);
  if (opt.temperature == 0.0f)
    return static_cast<int32_t>(std::max_element(logits, logits + V) - logits);
  std::vector<int32_t> idx(V);
  std::iota(idx.begin(), idx.end(), 0);
  int64_t keep = V;
  if (opt.top_k > 0 && opt.top_k < V) keep = opt.top_k;
  // Highest logits first; only the kept prefix needs ordering.
  std::partial_sort(idx.begin(), idx.begin() + keep, idx.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  std::vector<double> p(keep);
  const double mx = logits[idx[0]];
  double z = 0.0;
  for (int64_t i = 0; i < keep; ++i)
    z += (p[i] = std::exp((logits[idx[i]] - mx) / opt.temperature));
  if (opt.top_p < 1.0f) {
    double cum = 0.0;
    int64_t cut = keep;
    for (int64_t i = 0; i < keep; ++i) {
      cum += p[i] / z;
      if (cum >= opt.top_p) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
    z = std::accumulate(p.begin(), p.begin() + keep, 0.0);
  }
  double r = rng.uniform() * z;
  for (int64_t i = 0; i < keep; ++i) {
    r -= p[i];
    if (r <= 0.0) return idx[i];
  }
  return idx[keep - 1];
}

}  // namespace pf
