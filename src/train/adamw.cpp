#include "train/adamw.h"

#include <cmath>

#include "kernels/cpu/elementwise.h"

namespace pf {

AdamW::AdamW(const AdamWConfig& cfg, const std::vector<std::pair<std::string, Var>>& params,
             const std::vector<ParamKind>& kinds)
    : cfg_(cfg) {
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& [name, p] = params[i];
    slots_.push_back({name, p, kinds[i], Tensor::zeros(p.shape()), Tensor::zeros(p.shape())});
  }
}

void AdamW::step(double lr) {
  ++t_;
  const float b1 = static_cast<float>(cfg_.beta1), b2 = static_cast<float>(cfg_.beta2);
  const float bc1 = static_cast<float>(1.0 - std::pow(cfg_.beta1, static_cast<double>(t_)));
  const float bc2 = static_cast<float>(1.0 - std::pow(cfg_.beta2, static_cast<double>(t_)));
  const float eps = static_cast<float>(cfg_.eps);
  for (auto& s : slots_) {
    if (!s.param.has_grad()) continue;
    const float wd = s.kind == ParamKind::Matrix ? static_cast<float>(cfg_.weight_decay) : 0.0f;
    const float lrf = static_cast<float>(lr);
    float* p = s.param.data();
    const float* g = s.param.grad().data();
    float* m = s.m.data();
    float* v = s.v.data();
    const int64_t n = s.m.numel();
#pragma omp parallel for simd schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; ++i) {
      m[i] = b1 * m[i] + (1.0f - b1) * g[i];
      v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
      const float mh = m[i] / bc1, vh = v[i] / bc2;
      p[i] -= lrf * (mh / (std::sqrt(vh) + eps) + wd * p[i]);
    }
  }
}

double clip_grad_norm(std::vector<AdamW::Slot>& slots, double max_norm) {
  double ss = 0.0;
  for (auto& s : slots) {
    if (!s.param.has_grad()) continue;
    const float* g = s.param.grad().data();
    const int64_t n = s.param.value().numel();
    double part = 0.0;
    for (int64_t i = 0; i < n; ++i) part += static_cast<double>(g[i]) * g[i];
    ss += part;
  }
  const double norm = std::sqrt(ss);
  if (max_norm > 0 && norm > max_norm) {
    const float c = static_cast<float>(max_norm / (norm + 1e-6));
    for (auto& s : slots)
      if (s.param.has_grad())
        cpu::scale_fwd(s.param.value().numel(), c, s.param.grad().data(), s.param.grad().data());
  }
  return norm;
}

double lr_at(int64_t step, int64_t warmup, int64_t total_steps, double peak, double min_ratio) {
  if (warmup > 0 && step < warmup) return peak * (step + 1) / static_cast<double>(warmup);
  if (total_steps <= warmup) return peak;
  double progress = static_cast<double>(step - warmup) / static_cast<double>(total_steps - warmup);
  if (progress > 1.0) progress = 1.0;
  const double cosine = 0.5 * (1.0 + std::cos(3.14159265358979323846 * progress));
  return peak * (min_ratio + (1.0 - min_ratio) * cosine);
}

}  // namespace pf
