#include <algorithm>
#include <cmath>

#include "autograd/ops.h"
#include "base/error.h"
#include "kernels/cpu/gemm.h"
#include "models/mamba/mamba.h"
#include "models/mamba/mixer.h"

namespace pf {

namespace {

constexpr int64_t kUnbounded = int64_t{1} << 40;  // recurrent: no context limit
constexpr int64_t kPrefillChunk = 1024;           // bounds activation memory on long prompts

class MambaModel : public LanguageModel {
 public:
  MambaModel(const MambaConfig& c, uint64_t seed) : c_(c) {
    Rng rng(seed, 2);
    embed_ = normal_param({c.padded_vocab(), c.d_model}, 0.02f, rng);
    for (int64_t l = 0; l < c.n_layer; ++l) {
      norms_.push_back(constant_param({c.d_model}, 1.0f));
      mixers_.push_back(c.version == 2 ? make_mamba2_mixer(c, l, rng)
                                       : make_mamba1_mixer(c, l, rng));
    }
    norm_f_ = constant_param({c.d_model}, 1.0f);
    if (!c.tie_embeddings) lm_head_ = normal_param({c.padded_vocab(), c.d_model}, 0.02f, rng);
  }

  std::string arch() const override { return c_.version == 2 ? "mamba2" : "mamba"; }
  int64_t vocab_size() const override { return c_.padded_vocab(); }
  int64_t max_context() const override { return kUnbounded; }
  bool recurrent() const override { return true; }

  void visit_params(const ParamVisitor& visit) override {
    visit(c_.embedding_name(), embed_, ParamKind::Embedding);
    for (int64_t l = 0; l < c_.n_layer; ++l) {
      const std::string p = "backbone.layers." + std::to_string(l) + ".";
      visit(p + "norm.weight", norms_[l], ParamKind::Norm);
      mixers_[l]->visit(p + "mixer.", visit);
    }
    visit("backbone.norm_f.weight", norm_f_, ParamKind::Norm);
    if (!c_.tie_embeddings) visit("lm_head.weight", lm_head_, ParamKind::Matrix);
  }

  Var forward(const std::vector<int32_t>& tokens, int64_t B, int64_t T,
              const ForwardOptions& opt) override {
    const float eps = static_cast<float>(c_.norm_eps);
    Var x = embedding(embed_, tokens, B, T);  // (B, T, d)
    for (int64_t l = 0; l < c_.n_layer; ++l) {
      const uint64_t seed = opt.dropout_seed + l + 1;
      // By value: the backward may re-run this after forward() has returned.
      const float p = opt.dropout;
      auto block = [this, l, seed, B, T, eps, p](const Var& xin) {
        return add(xin, dropout(mixers_[l]->forward(rmsnorm(xin, norms_[l], eps), B, T), p, seed));
      };
      x = opt.recompute ? checkpoint(block, x) : block(x);
    }
    x = rmsnorm(x, norm_f_, eps);
    return reshape(linear(x, head()), {B * T, c_.padded_vocab()});  // (B*T, V)
  }

  std::unique_ptr<InferenceSession> new_session(int64_t max_tokens) override;

  nlohmann::json config_json() const override { return c_.to_json(); }

  int64_t state_bytes(int64_t) const override {
    return c_.n_layer * mixers_[0]->state_bytes();  // independent of context
  }

  double flops_per_token(int64_t) const override {
    double matrix = 0;
    int64_t embed = 0;
    const_cast<MambaModel*>(this)->visit_params([&](const std::string& n, Var& p, ParamKind k) {
      if (k == ParamKind::Matrix && n.find("conv1d") == std::string::npos)
        matrix += static_cast<double>(p.value().numel());
      if (k == ParamKind::Embedding) embed = p.value().numel();
    });
    if (c_.tie_embeddings) matrix += static_cast<double>(embed);  // the head reuses it
    return 2.0 * matrix + c_.n_layer * mixers_[0]->extra_flops_per_token();
  }

  const Var& head() const { return c_.tie_embeddings ? embed_ : lm_head_; }

  MambaConfig c_;
  Var embed_;               // (Vp, d)
  std::vector<Var> norms_;  // n_layer x (d)
  std::vector<std::unique_ptr<Mixer>> mixers_;
  Var norm_f_;   // (d)
  Var lm_head_;  // (Vp, d) when untied
};

class MambaSession : public InferenceSession {
 public:
  explicit MambaSession(MambaModel& m) : m_(m) { reset(); }

  Tensor forward(const int32_t* tokens, int64_t n, bool all_logits) override {
    PF_CHECK(n > 0, "forward: no tokens");
    NoGradScope no_grad;
    Tensor out = all_logits ? Tensor::empty({n, m_.vocab_size()}) : Tensor();
    for (int64_t s = 0; s < n; s += kPrefillChunk) {
      const int64_t len = std::min(kPrefillChunk, n - s);
      Tensor logits = chunk_forward(tokens + s, len, all_logits);
      if (all_logits)
        out.slice(0, s, s + len).copy_from(logits);
      else if (s + len == n)
        out = logits;
    }
    remember_logits(out);
    pos_ += n;
    return out;
  }

  int64_t position() const override { return pos_; }
  int64_t capacity() const override { return kUnbounded; }
  void reset() override {
    states_.clear();
    for (auto& mx : m_.mixers_) states_.push_back(mx->new_state());
    pos_ = 0;
  }

  std::vector<std::pair<std::string, Tensor>> export_state() const override {
    std::vector<std::pair<std::string, Tensor>> out;
    for (size_t l = 0; l < states_.size(); ++l)
      for (auto& [name, t] : states_[l].tensors)
        out.emplace_back("layers." + std::to_string(l) + "." + name, t);
    return out;
  }

  void import_state(const std::vector<std::pair<std::string, Tensor>>& state,
                    int64_t position) override {
    size_t i = 0;
    for (auto& st : states_)
      for (auto& [name, t] : st.tensors) {
        PF_CHECK(i < state.size(), "state has too few tensors");
        PF_CHECK(state[i].second.shape() == t.shape(), "state tensor '", state[i].first,
                 "' has shape ", shape_str(state[i].second.shape()), ", expected ",
                 shape_str(t.shape()));
        t.copy_from(state[i++].second);
      }
    PF_CHECK(i == state.size(), "state has ", state.size(), " tensors, expected ", i);
    pos_ = position;
  }

 private:
  // n tokens through every layer, continuing the recurrent state.
  Tensor chunk_forward(const int32_t* tokens, int64_t n, bool all_logits) {
    const auto& c = m_.c_;
    const float eps = static_cast<float>(c.norm_eps);
    std::vector<int32_t> ids(tokens, tokens + n);
    Var x = embedding(m_.embed_, ids, 1, n);  // (1, n, d)
    for (int64_t l = 0; l < c.n_layer; ++l)
      x = add(x, m_.mixers_[l]->forward_inference(rmsnorm(x, m_.norms_[l], eps), n, states_[l]));
    const int64_t rows = all_logits ? n : 1;
    Tensor xs = x.value().view({n, c.d_model}).slice(0, n - rows, n).contiguous();  // (rows, d)
    Var hf = rmsnorm(Var(xs), m_.norm_f_, eps);
    Tensor logits = Tensor::empty({rows, m_.vocab_size()});  // (rows, Vp)
    cpu::linear_fwd(rows, m_.vocab_size(), c.d_model, hf.data(), m_.head().data(), 0.0f,
                    logits.data());
    return logits;
  }

  MambaModel& m_;
  std::vector<MixerState> states_;  // per layer
  int64_t pos_ = 0;
};

std::unique_ptr<InferenceSession> MambaModel::new_session(int64_t) {
  return std::make_unique<MambaSession>(*this);
}

}  // namespace

std::unique_ptr<LanguageModel> make_mamba(const nlohmann::json& config, uint64_t seed) {
  return std::make_unique<MambaModel>(MambaConfig::from_json(config, 1), seed);
}

std::unique_ptr<LanguageModel> make_mamba2(const nlohmann::json& config, uint64_t seed) {
  return std::make_unique<MambaModel>(MambaConfig::from_json(config, 2), seed);
}

}  // namespace pf
