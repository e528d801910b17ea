#include <cmath>

#include "autograd/ops.h"
#include "autograd/ops_retention.h"
#include "base/error.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/retention.h"
#include "models/retnet/retnet.h"
#include "models/retnet/retnet_config.h"

namespace pf {

namespace {

constexpr int64_t kUnbounded = int64_t{1} << 40;  // recurrent: no context limit
constexpr int64_t kPrefillChunk = 2048;           // bounds activation memory on long prompts

struct RetNetLayer {
  Var attn_norm;           // (d)
  Var wq, wk, wv, wg, wo;  // (Kd, d), (Kd, d), (Vd, d), (Vd, d), (d, Vd)
  Var head_norm;           // (dv) or undefined (torchscale: no weight)
  Var mlp_norm;            // (d)
  Var w_gate_up;           // (2F, d): rows [0, F) gate, [F, 2F) up
  Var w_down;              // (d, F)
};

class RetNetModel : public LanguageModel {
 public:
  RetNetModel(const RetNetConfig& c, uint64_t seed) : c_(c) {
    Rng rng(seed, 3);
    const int64_t d = c.hidden_size, Kd = c.key_dim(), Vd = c.value_dim(), F = c.ffn();
    const float std = 0.02f, out_std = std / std::sqrt(2.0f * c.num_hidden_layers);
    embed_ = normal_param({c.vocab_size, d}, std, rng);
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      RetNetLayer L;
      L.attn_norm = constant_param({d}, 1.0f);
      L.wq = normal_param({Kd, d}, std, rng);
      L.wk = normal_param({Kd, d}, std, rng);
      L.wv = normal_param({Vd, d}, std, rng);
      L.wg = normal_param({Vd, d}, std, rng);
      L.wo = normal_param({d, Vd}, out_std, rng);
      if (c.head_norm_weight) L.head_norm = constant_param({c.head_v()}, 1.0f);
      L.mlp_norm = constant_param({d}, 1.0f);
      L.w_gate_up = normal_param({2 * F, d}, std, rng);
      L.w_down = normal_param({d, F}, out_std, rng);
      layers_.push_back(std::move(L));
    }
    norm_ = constant_param({d}, 1.0f);
    if (!c.tie_word_embeddings) lm_head_ = normal_param({c.vocab_size, d}, std, rng);
    gamma_ = Tensor::empty({c.num_heads});  // gamma_h = 1 - 2^(-5-h)
    for (int64_t h = 0; h < c.num_heads; ++h)
      gamma_.data()[h] = static_cast<float>(1.0 - std::pow(2.0, -5.0 - static_cast<double>(h)));
  }

  std::string arch() const override { return "retnet"; }
  int64_t vocab_size() const override { return c_.vocab_size; }
  int64_t max_context() const override { return kUnbounded; }
  bool recurrent() const override { return true; }

  void visit_params(const ParamVisitor& visit) override {
    visit("model.embeddings.weight", embed_, ParamKind::Embedding);
    for (size_t l = 0; l < layers_.size(); ++l) {
      auto& L = layers_[l];
      const std::string p = "model.layers." + std::to_string(l) + ".";
      visit(p + "attn_norm.weight", L.attn_norm, ParamKind::Norm);
      visit(p + "attn.q_proj.weight", L.wq, ParamKind::Matrix);
      visit(p + "attn.k_proj.weight", L.wk, ParamKind::Matrix);
      visit(p + "attn.v_proj.weight", L.wv, ParamKind::Matrix);
      visit(p + "attn.g_proj.weight", L.wg, ParamKind::Matrix);
      visit(p + "attn.o_proj.weight", L.wo, ParamKind::Matrix);
      if (L.head_norm.defined())
        visit(p + (c_.fused_gate_name ? "attn.g_norm_swish_gate.weight" : "attn.g_norm.weight"),
              L.head_norm, ParamKind::Norm);
      visit(p + "mlp_norm.weight", L.mlp_norm, ParamKind::Norm);
      visit(p + "mlp.gate_proj.weight", L.w_gate_up, ParamKind::Matrix);
      visit(p + "mlp.down_proj.weight", L.w_down, ParamKind::Matrix);
    }
    visit("model.norm.weight", norm_, ParamKind::Norm);
    if (!c_.tie_word_embeddings) visit("lm_head.weight", lm_head_, ParamKind::Matrix);
  }

  // Retention over (B, T) tokens at absolute positions pos0.. . With a state (inference)
  // the chunkwise or step kernels continue it; without (training) the autograd op runs.
  // q, k, v and g come from one matrix product; in training everything after it is
  // recomputed in the backward, so a layer stores that product and its output only.
  Var mixer(const RetNetLayer& L, const Var& h, int64_t B, int64_t T, int64_t pos0,
            Tensor* state) const {
    if (state) return mixer_after_projection(L, project_inference(L, h, B * T), B, T, pos0, state);
    Var qkvg = linear(h, concat_rows({L.wq, L.wk, L.wv, L.wg}));  // (B, T, 2Kd + 2Vd)
    auto rest = [this, &L, B, T, pos0](const Var& in) {
      return mixer_after_projection(L, in, B, T, pos0, nullptr);
    };
    return checkpoint(rest, qkvg);
  }

  // The same (rows, 2Kd + 2Vd) product for inference, written projection by projection into
  // one buffer, so the weights are not copied into a concatenation on every token.
  Var project_inference(const RetNetLayer& L, const Var& h, int64_t rows) const {
    const int64_t d = c_.hidden_size, total = 2 * c_.key_dim() + 2 * c_.value_dim();
    Tensor out = Tensor::empty({rows, total});  // (rows, 2Kd + 2Vd)
    int64_t off = 0;
    for (const Var* w : {&L.wq, &L.wk, &L.wv, &L.wg}) {
      const int64_t n = w->shape()[0];
      if (rows == 1)
        cpu::linear_fwd(1, n, d, h.data(), w->data(), 0.0f, out.data() + off);
      else
        cpu::gemm(false, true, rows, n, d, 1.0f, h.data(), d, w->data(), d, 0.0f, out.data() + off,
                  total);
      off += n;
    }
    return Var(out.view({h.shape()[0], h.shape()[1], total}));
  }

  Var mixer_after_projection(const RetNetLayer& L, const Var& qkvg, int64_t B, int64_t T,
                             int64_t pos0, Tensor* state) const {
    const int64_t H = c_.num_heads, dk = c_.head_k(), dv = c_.head_v();
    const bool fla = c_.variant == RetentionVariant::Fla;
    auto parts = split_last(qkvg, {c_.key_dim(), c_.key_dim(), c_.value_dim(), c_.value_dim()});
    const float kscale = 1.0f / std::sqrt(static_cast<float>(dk));
    cpu::RopeStyle rs{static_cast<float>(c_.rope_theta), !fla, !fla};
    Var q = reshape(parts[0], {B, T, H, dk});  // (B, T, H, dk)
    Var k = reshape(parts[1], {B, T, H, dk});
    if (fla)
      q = scale(q, kscale);
    else
      k = scale(k, kscale);
    q = rope(q, pos0, rs);
    k = rope(k, pos0, rs);
    Var v = reshape(parts[2], {B, T, H, dv});  // (B, T, H, dv)
    Var o;                                     // (B, T, H, dv)
    if (!state) {
      const cpu::RetForm form =
          c_.parallel_training && !fla ? cpu::RetForm::Parallel : cpu::RetForm::Chunkwise;
      o = retention(q, k, v, gamma_, form, c_.chunk);
    } else {
      o = Var(Tensor::empty({B, T, H, dv}));
      const cpu::RetShape s{B, T, H, dk, dv};
      if (T == 1) {
        cpu::retention_step(s, q.data(), k.data(), v.data(), gamma_.data(), state->data(), pos0,
                            o.data());
      } else {
        Tensor prev = state->clone();
        cpu::retention_fwd(s, cpu::RetForm::Chunkwise, c_.chunk, q.data(), k.data(), v.data(),
                           gamma_.data(), o.data(), prev.data(), state->data(), pos0);
      }
    }
    // fla's retention is un-normalised: undo the kernel's 1/sqrt(rowsum) per row.
    if (fla) o = scale_rows(o, row_factors(B, T, pos0));
    o = rmsnorm(o, L.head_norm, static_cast<float>(c_.head_norm_eps));          // per head
    return linear(swiglu(parts[3], reshape(o, {B, T, c_.value_dim()})), L.wo);  // (B, T, d)
  }

  // sqrt(sum_{m<=n} gamma^(n-m)) for every (b, t, h): (B, T, H).
  Tensor row_factors(int64_t B, int64_t T, int64_t pos0) const {
    const int64_t H = c_.num_heads;
    Tensor f = Tensor::empty({B, T, H});
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h) {
        const double g = gamma_.data()[h];
        const double rowsum = (1.0 - std::pow(g, static_cast<double>(pos0 + t + 1))) / (1.0 - g);
        for (int64_t b = 0; b < B; ++b)
          f.data()[(b * T + t) * H + h] = static_cast<float>(std::sqrt(rowsum));
      }
    return f;
  }

  Var block(const RetNetLayer& L, const Var& x, int64_t B, int64_t T, int64_t pos0, Tensor* state,
            float p, uint64_t seed) const {
    const float eps = static_cast<float>(c_.norm_eps);
    const int64_t F = c_.ffn();
    Var x1 = add(x, dropout(mixer(L, rmsnorm(x, L.attn_norm, eps), B, T, pos0, state), p, seed));
    Var h = rmsnorm(x1, L.mlp_norm, eps);
    Var m = swiglu(linear(h, rows(L.w_gate_up, 0, F)), linear(h, rows(L.w_gate_up, F, 2 * F)));
    return add(x1, dropout(linear(m, L.w_down), p, seed + 1));
  }

  Var forward(const std::vector<int32_t>& tokens, int64_t B, int64_t T,
              const ForwardOptions& opt) override {
    Var x = embedding(embed_, tokens, B, T);  // (B, T, d)
    for (size_t l = 0; l < layers_.size(); ++l) {
      const uint64_t seed = opt.dropout_seed + 2 * l;
      const float p = opt.dropout;
      auto fn = [this, l, B, T, p, seed](const Var& xin) {
        return block(layers_[l], xin, B, T, 0, nullptr, p, seed);
      };
      x = opt.recompute ? checkpoint(fn, x) : fn(x);
    }
    x = rmsnorm(x, norm_, static_cast<float>(c_.norm_eps));
    return reshape(linear(x, head()), {B * T, c_.vocab_size});
  }

  std::unique_ptr<InferenceSession> new_session(int64_t max_tokens) override;
  nlohmann::json config_json() const override { return c_.to_json(); }

  int64_t state_bytes(int64_t) const override {
    return c_.num_hidden_layers * c_.num_heads * c_.head_k() * c_.head_v() *
           static_cast<int64_t>(sizeof(float));
  }

  double flops_per_token(int64_t) const override {
    const double d = c_.hidden_size, L = c_.num_hidden_layers;
    const double matrix =
        L * (d * (2.0 * c_.key_dim() + 3.0 * c_.value_dim()) + 3.0 * d * c_.ffn()) +
        d * c_.vocab_size;
    // Chunkwise retention: within-chunk scores and mixing (~chunk/2 keys per token) plus
    // the state read and update (H * dk * dv each).
    const double ret = L * (2.0 * c_.num_heads * (c_.head_k() + c_.head_v()) * (c_.chunk / 2.0) +
                            4.0 * c_.num_heads * c_.head_k() * c_.head_v());
    return 2.0 * matrix + ret;
  }

  const Var& head() const { return c_.tie_word_embeddings ? embed_ : lm_head_; }

  RetNetConfig c_;
  Var embed_;  // (V, d)
  std::vector<RetNetLayer> layers_;
  Var norm_;      // (d)
  Var lm_head_;   // (V, d) when untied
  Tensor gamma_;  // (H) decays, fixed
};

class RetNetSession : public InferenceSession {
 public:
  explicit RetNetSession(RetNetModel& m) : m_(m) { reset(); }

  Tensor forward(const int32_t* tokens, int64_t n, bool all_logits) override {
    PF_CHECK(n > 0, "forward: no tokens");
    NoGradScope no_grad;
    const auto& c = m_.c_;
    Tensor out = all_logits ? Tensor::empty({n, c.vocab_size}) : Tensor();
    for (int64_t s = 0; s < n; s += kPrefillChunk) {
      const int64_t len = std::min(kPrefillChunk, n - s);
      std::vector<int32_t> ids(tokens + s, tokens + s + len);
      Var x = embedding(m_.embed_, ids, 1, len);  // (1, len, d)
      for (size_t l = 0; l < m_.layers_.size(); ++l)
        x = m_.block(m_.layers_[l], x, 1, len, pos_, &states_[l], 0.0f, 0);
      pos_ += len;
      const int64_t rows = all_logits ? len : 1;
      Tensor xs = x.value().view({len, c.hidden_size}).slice(0, len - rows, len).contiguous();
      Var hf = rmsnorm(Var(xs), m_.norm_, static_cast<float>(c.norm_eps));
      Tensor logits = Tensor::empty({rows, c.vocab_size});  // (rows, V)
      cpu::linear_fwd(rows, c.vocab_size, c.hidden_size, hf.data(), m_.head().data(), 0.0f,
                      logits.data());
      if (all_logits)
        out.slice(0, s, s + len).copy_from(logits);
      else if (s + len == n)
        out = logits;
    }
    remember_logits(out);
    return out;
  }

  int64_t position() const override { return pos_; }
  int64_t capacity() const override { return kUnbounded; }
  void reset() override {
    const auto& c = m_.c_;
    states_.assign(c.num_hidden_layers, Tensor());
    for (auto& s : states_) s = Tensor::zeros({1, c.num_heads, c.head_k(), c.head_v()});
    pos_ = 0;
  }

  std::vector<std::pair<std::string, Tensor>> export_state() const override {
    std::vector<std::pair<std::string, Tensor>> out;
    for (size_t l = 0; l < states_.size(); ++l)
      out.emplace_back("layers." + std::to_string(l) + ".retention_state", states_[l]);
    return out;
  }

  void import_state(const std::vector<std::pair<std::string, Tensor>>& state,
                    int64_t position) override {
    PF_CHECK(state.size() == states_.size(), "state has ", state.size(), " tensors, expected ",
             states_.size());
    for (size_t l = 0; l < states_.size(); ++l) {
      PF_CHECK(state[l].second.shape() == states_[l].shape(), "state tensor '", state[l].first,
               "' has shape ", shape_str(state[l].second.shape()), ", expected ",
               shape_str(states_[l].shape()));
      states_[l].copy_from(state[l].second);
    }
    pos_ = position;
  }

 private:
  RetNetModel& m_;
  std::vector<Tensor> states_;  // per layer (1, H, dk, dv), un-normalised
  int64_t pos_ = 0;
};

std::unique_ptr<InferenceSession> RetNetModel::new_session(int64_t) {
  return std::make_unique<RetNetSession>(*this);
}

}  // namespace

std::unique_ptr<LanguageModel> make_retnet(const nlohmann::json& config, uint64_t seed) {
  return std::make_unique<RetNetModel>(RetNetConfig::from_json(config), seed);
}

}  // namespace pf
