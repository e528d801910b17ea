// AdamW with decoupled weight decay (Loshchilov & Hutter), applied only to Matrix params.
#pragma once
#include <string>
#include <vector>

#include "nn/params.h"

namespace pf {

struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
};

class AdamW {
 public:
  struct Slot {
    std::string name;
    Var param;
    ParamKind kind;
    Tensor m, v;  // first and second moments, same shape as param
  };

  AdamW(const AdamWConfig& cfg, const std::vector<std::pair<std::string, Var>>& params,
        const std::vector<ParamKind>& kinds);
  void step(double lr);
  int64_t steps_taken() const { return t_; }
  void set_steps_taken(int64_t t) { t_ = t; }
  std::vector<Slot>& slots() { return slots_; }

 private:
  AdamWConfig cfg_;
  std::vector<Slot> slots_;
  int64_t t_ = 0;
};

// Global L2 norm of all gradients; scales them down to max_norm when larger. Returns the norm.
double clip_grad_norm(std::vector<AdamW::Slot>& slots, double max_norm);

// Linear warmup to peak, then cosine decay to peak * min_ratio at total_steps.
double lr_at(int64_t step, int64_t warmup, int64_t total_steps, double peak, double min_ratio);

}  // namespace pf
