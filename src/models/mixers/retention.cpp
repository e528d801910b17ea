#include "models/mixers/retention.h"

#include <cmath>
#include <cstdio>

#include "autograd/ops.h"
#include "autograd/ops_retention.h"
#include "base/error.h"
#include "kernels/cpu/retention.h"
#include "kernels/cpu/rope.h"

namespace pf {

std::vector<float> retention_decays(const std::string& scheme, int64_t heads) {
  std::vector<float> g(heads);
  for (int64_t h = 0; h < heads; ++h) {
    if (scheme == "torchscale") {
      g[h] = static_cast<float>(1.0 - std::pow(2.0, -5.0 - static_cast<double>(h)));
    } else if (scheme == "paper") {
      const double a = std::log(1.0 / 32), b = std::log(1.0 / 512);
      const double t = heads > 1 ? static_cast<double>(h) / (heads - 1) : 0.0;
      g[h] = static_cast<float>(1.0 - std::exp(a + (b - a) * t));
    } else {
      fail("retention decays '", scheme, "' are not one of torchscale, paper (or give a list)");
    }
  }
  return g;
}

std::vector<float> parse_retention_decay(const nlohmann::json& v, int64_t heads,
                                         const std::string& key) {
  if (v.is_string()) {
    const std::string name = v.get<std::string>();
    PF_CHECK(name == "torchscale" || name == "paper", "config: ", key, " '", name,
             "' is not one of torchscale, paper, or a list of per-head decays");
    return retention_decays(name, heads);
  }
  PF_CHECK(v.is_array(), "config: ", key, " must be torchscale, paper or a list of decays");
  PF_CHECK(static_cast<int64_t>(v.size()) == heads, "config: ", key, " lists ", v.size(),
           " decays for ", heads, " heads");
  std::vector<float> g;
  for (const auto& x : v) {
    PF_CHECK(x.is_number(), "config: ", key, " entries must be numbers");
    const double d = x.get<double>();
    PF_CHECK(d > 0.0 && d < 1.0, "config: ", key, " ", d, " is outside (0, 1)");
    g.push_back(static_cast<float>(d));
  }
  return g;
}

RetentionPrefill parse_retention_prefill(const std::string& name, const std::string& key) {
  PF_CHECK(name == "chunkwise" || name == "parallel" || name == "recurrent", "config: ", key, " '",
           name, "' is not one of chunkwise, parallel, recurrent");
  return name == "parallel"    ? RetentionPrefill::Parallel
         : name == "recurrent" ? RetentionPrefill::Recurrent
                               : RetentionPrefill::Chunkwise;
}

const char* retention_prefill_name(RetentionPrefill p) {
  return p == RetentionPrefill::Parallel    ? "parallel"
         : p == RetentionPrefill::Recurrent ? "recurrent"
                                            : "chunkwise";
}

namespace {

class Retention : public Mixer {
 public:
  Retention(const RetentionSpec& s, Rng& rng) : s_(s) {
    const int64_t d = s.d, Kd = kd(), Vd = vd();
    wq_ = normal_param({Kd, d}, s.init_std, rng);
    wk_ = normal_param({Kd, d}, s.init_std, rng);
    wv_ = normal_param({Vd, d}, s.init_std, rng);
    wg_ = normal_param({Vd, d}, s.init_std, rng);
    wo_ = normal_param({d, Vd}, s.out_std, rng);
    if (!s.head_norm_name.empty()) head_norm_ = constant_param({s.head_v}, 1.0f);
    gamma_ = Tensor::from({s.heads}, s.gammas);
  }

  void visit(const std::string& p, const ParamVisitor& visit) override {
    visit(p + "q_proj.weight", wq_, ParamKind::Matrix);
    visit(p + "k_proj.weight", wk_, ParamKind::Matrix);
    visit(p + "v_proj.weight", wv_, ParamKind::Matrix);
    visit(p + "g_proj.weight", wg_, ParamKind::Matrix);
    visit(p + "o_proj.weight", wo_, ParamKind::Matrix);
    if (head_norm_.defined()) visit(p + s_.head_norm_name, head_norm_, ParamKind::Norm);
  }

  // q, k, v and g come from one matrix product; everything after it is recomputed in the
  // backward, so a layer stores that product and its output only.
  Var forward(const Var& h, int64_t B, int64_t T, int64_t pos0) override {
    PF_CHECK(pos0 == 0, "retention: the taped forward starts at position 0");
    Var qkvg = linear(h, concat_rows({wq_, wk_, wv_, wg_}));  // (B, T, 2Kd + 2Vd)
    auto rest = [this, B, T](const Var& in) {
      auto p = split_last(in, {kd(), kd(), vd(), vd()});
      const int64_t H = s_.heads;
      Var q = reshape(p[0], {B, T, H, s_.head_k});  // (B, T, H, dk)
      Var k = reshape(p[1], {B, T, H, s_.head_k});
      scale_qk(q, k);
      q = rope(q, 0, rope_style());
      k = rope(k, 0, rope_style());
      Var v = reshape(p[2], {B, T, H, s_.head_v});  // (B, T, H, dv)
      const RetForm form = s_.parallel_training && !fla() ? RetForm::Parallel : RetForm::Chunkwise;
      Var o = retention(q, k, v, gamma_, form, s_.chunk);  // (B, T, H, dv)
      if (fla()) o = scale_rows(o, row_factors(fill_positions(B, T)));
      return gate_and_project(o, p[3], {B, T});
    };
    return checkpoint(rest, qkvg);
  }

  Var forward_cached(const Var& h, const SeqBatch& batch, LayerState& state) override {
    auto& st = dynamic_cast<RecurrentState&>(state);  // (S, H, dk, dv) un-normalised
    const int64_t rows = batch.rows(), H = s_.heads, dk = s_.head_k, dv = s_.head_v;
    // Four products rather than one over the concatenation: no copy of the weights per
    // call, and each takes linear_fwd's few-rows paths.
    const std::vector<Var> p = {linear(h, wq_), linear(h, wk_), linear(h, wv_), linear(h, wg_)};
    Var q = p[0], k = p[1];  // (rows, H*dk)
    scale_qk(q, k);
    const std::vector<int64_t> pos = batch.row_positions();
    cpu::rope_fwd_rows(rows, H, dk, pos.data(), rope_style(), q.data(), q.data());
    cpu::rope_fwd_rows(rows, H, dk, pos.data(), rope_style(), k.data(), k.data());
    const float* v = p[2].data();
    Var o(Tensor::empty({rows, H, dv}));  // (rows, H, dv)
    for (const RowGroup& g : batch.groups()) {
      const int64_t r0 = g.row0;
      const float *qg = q.data() + r0 * H * dk, *kg = k.data() + r0 * H * dk, *vg = v + r0 * H * dv;
      float* og = o.data() + r0 * H * dv;
      if (g.decode) {
        cpu::retention_step(cpu::RetShape{g.rows, 1, H, dk, dv}, qg, kg, vg, gamma_.data(),
                            st.base(0), g.positions.data(), og, g.slots.data());
        continue;
      }
      const int64_t slot = g.slots[0], pos0 = g.positions[0];
      float* S = st.at(0, slot);
      const cpu::RetShape s{1, g.rows, H, dk, dv};
      if (s_.prefill == RetentionPrefill::Recurrent) {
        for (int64_t t = 0; t < g.rows; ++t)
          cpu::retention_step(cpu::RetShape{1, 1, H, dk, dv}, qg + t * H * dk, kg + t * H * dk,
                              vg + t * H * dv, gamma_.data(), S, pos0 + t, og + t * H * dv);
      } else if (s_.prefill == RetentionPrefill::Parallel && pos0 == 0) {
        // The parallel form starts from an empty state; its normalisation differs from
        // the recurrent one's only by a per-row factor the head norm removes (eps 0).
        cpu::retention_fwd(s, cpu::RetForm::Parallel, s_.chunk, qg, kg, vg, gamma_.data(), og,
                           nullptr, S, 0);
      } else {
        const std::vector<float> prev(S, S + H * dk * dv);
        cpu::retention_fwd(s, cpu::RetForm::Chunkwise, s_.chunk, qg, kg, vg, gamma_.data(), og,
                           prev.data(), S, pos0);
      }
    }
    if (fla()) o = scale_rows(o, row_factors(pos));
    return gate_and_project(o, p[3], {rows});
  }

  std::unique_ptr<LayerState> new_state(int64_t slots, int64_t) const override {
    return std::make_unique<RecurrentState>(
        slots, std::vector<std::pair<std::string, Shape>>{
                   {"retention_state", {s_.heads, s_.head_k, s_.head_v}}});
  }
  bool bounded_state() const override { return true; }
  int64_t state_bytes(int64_t) const override {
    return s_.heads * s_.head_k * s_.head_v * static_cast<int64_t>(sizeof(float));
  }
  double flops_per_token(int64_t) const override {
    // Chunkwise retention: within-chunk scores and mixing (~chunk/2 keys per token) plus
    // the state read and update (H * dk * dv each).
    const double ret = 2.0 * s_.heads * (s_.head_k + s_.head_v) * (s_.chunk / 2.0) +
                       4.0 * s_.heads * s_.head_k * s_.head_v;
    return 2.0 * static_cast<double>(s_.d) * (2.0 * kd() + 3.0 * vd()) + ret;
  }
  std::vector<std::string> describe() const override {
    std::string line = "retention memory per head (tokens, 1/(1-gamma)):";
    for (float g : s_.gammas) {
      char buf[32];
      std::snprintf(buf, sizeof buf, " %.0f", 1.0 / (1.0 - static_cast<double>(g)));
      line += buf;
    }
    return {line};
  }

 private:
  bool fla() const { return s_.variant == RetentionVariant::Fla; }
  int64_t kd() const { return s_.heads * s_.head_k; }
  int64_t vd() const { return s_.heads * s_.head_v; }
  cpu::RopeStyle rope_style() const {
    return cpu::RopeStyle{static_cast<float>(s_.rope_theta), !fla(), !fla()};
  }
  void scale_qk(Var& q, Var& k) const {
    const float kscale = 1.0f / std::sqrt(static_cast<float>(s_.head_k));
    if (fla())
      q = scale(q, kscale);
    else
      k = scale(k, kscale);
  }

  // o: (..., H, dv) -> out_proj(SiLU(g) * headnorm(o)): (..., d); lead is the leading shape.
  Var gate_and_project(const Var& o, const Var& g, Shape lead) const {
    Var n = rmsnorm(o, head_norm_, static_cast<float>(s_.head_norm_eps));  // per head
    lead.push_back(vd());
    return linear(swiglu(g, reshape(n, lead)), wo_);
  }

  static std::vector<int64_t> fill_positions(int64_t B, int64_t T) {
    std::vector<int64_t> p(B * T);
    for (int64_t i = 0; i < B * T; ++i) p[i] = i % T;
    return p;
  }

  // fla's retention is un-normalised: sqrt(sum_{m<=n} gamma^(n-m)) undoes the kernel's
  // 1/sqrt(rowsum) per row. (rows, H) for rows at the given positions.
  Tensor row_factors(const std::vector<int64_t>& pos) const {
    const int64_t H = s_.heads, n = static_cast<int64_t>(pos.size());
    Tensor f = Tensor::empty({n, H});
    for (int64_t r = 0; r < n; ++r)
      for (int64_t h = 0; h < H; ++h) {
        const double g = gamma_.data()[h];
        const double rowsum = (1.0 - std::pow(g, static_cast<double>(pos[r] + 1))) / (1.0 - g);
        f.data()[r * H + h] = static_cast<float>(std::sqrt(rowsum));
      }
    return f;
  }

  RetentionSpec s_;
  Var wq_, wk_, wv_, wg_, wo_;  // (Kd, d), (Kd, d), (Vd, d), (Vd, d), (d, Vd)
  Var head_norm_;               // (dv) or undefined (torchscale: no weight)
  Tensor gamma_;                // (H) decays, fixed
};

}  // namespace

std::unique_ptr<Mixer> make_retention(const RetentionSpec& s, Rng& rng) {
  return std::make_unique<Retention>(s, rng);
}

}  // namespace pf
