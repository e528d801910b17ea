#include "models/perceiver/perceiver_ar.h"

#include <cmath>

#include "autograd/ops.h"
#include "base/error.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/typed_linear.h"
#include "models/transformer/transformer.h"

namespace pf {

PerceiverAR::PerceiverAR(StackSpec spec, const PerceiverArConfig& c, uint64_t seed)
    : spec_(std::move(spec)), c_(c) {
  Rng rng(seed, spec_.rng_stream);
  const int64_t d = spec_.d_model;
  const float eps = static_cast<float>(spec_.norm_eps);
  embed_ = normal_param({spec_.vocab, d}, 0.02f, rng);
  cross_spec_ = c.cross_attention();
  cross_norm_ = constant_param({d}, 1.0f);
  cross_kv_norm_ = constant_param({d}, 1.0f);
  cross_ = std::make_unique<CrossAttention>(cross_spec_, rng);
  // The cross layer's MLP has the shape and names of every latent layer's.
  cross_mlp_ = std::make_unique<Mlp>(
      llama_attention_block(0, c.self_attention(), c.intermediate_size).mlp, d, rng);
  for (const BlockSpec& b : spec_.layers)
    blocks_.push_back(std::make_unique<Block>(b, d, eps, rng));
  norm_f_ = constant_param({d}, 1.0f);
  if (!spec_.tied) lm_head_ = normal_param({spec_.vocab, d}, 0.02f, rng);
}

void PerceiverAR::visit_params(const ParamVisitor& visit) {
  visit(spec_.embedding, embed_, ParamKind::Embedding);
  const std::string p = "model.layers.0.";
  visit(p + "input_layernorm.weight", cross_norm_, ParamKind::Norm);
  visit(p + "kv_layernorm.weight", cross_kv_norm_, ParamKind::Norm);
  cross_->visit(p + "cross_attn.", visit);
  cross_mlp_->visit(p, visit);
  for (auto& b : blocks_) b->visit(visit);
  visit(spec_.final_norm, norm_f_, ParamKind::Norm);
  if (!spec_.tied) visit(spec_.head, lm_head_, ParamKind::Matrix);
}

Var PerceiverAR::forward(const std::vector<int32_t>& tokens, int64_t B, int64_t T,
                         const ForwardOptions& opt) {
  return forward_window(tokens, B, T, loss_rows(T), 0, opt);
}

Var PerceiverAR::forward_window(const std::vector<int32_t>& tokens, int64_t B, int64_t T,
                                int64_t latents, int64_t pos0, const ForwardOptions& opt) {
  PF_CHECK(T <= c_.context_length, "sequence length ", T, " exceeds the model's context of ",
           c_.context_length);
  PF_CHECK(latents >= 1 && latents <= T, "perceiver-ar: ", latents, " latents for ", T,
           " positions");
  const float eps = static_cast<float>(spec_.norm_eps);
  const int64_t M = latents;
  Var x = embedding(embed_, tokens, B, T);  // (B, T, d)
  Var xl = seq_tail(x, M);                  // (B, M, d): the latents' inputs
  // Layer 0: latents cross-attend to every input at or before their position.
  Var a = cross_->forward(rmsnorm(xl, cross_norm_, eps), rmsnorm(x, cross_kv_norm_, eps),
                          cpu::AttnMask::RightAligned, pos0);  // (B, M, d)
  Var z = add(xl, dropout(a, opt.dropout, opt.dropout_seed + 1));
  z = cross_mlp_->residual(z, eps, opt.dropout, opt.dropout_seed + 2);  // (B, M, d)
  for (size_t l = 0; l < blocks_.size(); ++l) {
    const uint64_t seed = opt.dropout_seed + 2 * (l + 1);
    const float p = opt.dropout;
    Block* blk = blocks_[l].get();
    // Self-attention positions count from the first latent: RoPE is relative, and the
    // cached session restarts them at each re-encoding the same way.
    auto fn = [blk, B, M, p, seed](const Var& zin) { return blk->forward(zin, B, M, 0, p, seed); };
    z = opt.recompute ? checkpoint(fn, z) : fn(z);
  }
  z = rmsnorm(z, norm_f_, eps);
  return reshape(linear(z, head()), {B * M, spec_.vocab});  // (B*M, V)
}

Var PerceiverAR::embed_rows(const int32_t* ids, int64_t n) const {
  std::vector<int32_t> v(ids, ids + n);
  for (int32_t id : v)
    PF_CHECK(id >= 0 && id < spec_.vocab, "token id ", id, " is outside the vocabulary of ",
             spec_.vocab);
  return reshape(embedding(embed_, v, 1, n), {n, spec_.d_model});
}

void PerceiverAR::input_kv(const Var& x, const int64_t* pos, float* k, float* v) const {
  cross_->project_kv(rmsnorm(x, cross_kv_norm_, static_cast<float>(spec_.norm_eps)), pos, k, v);
}

Var PerceiverAR::latent_rows(const Var& x, const int64_t* pos, const float* k, const float* v,
                             int64_t Tk, int64_t first, StatePool& pool) {
  const float eps = static_cast<float>(spec_.norm_eps);
  const int64_t n = x.shape()[0];
  Var a = cross_->attend_cached(rmsnorm(x, cross_norm_, eps), pos, k, v, Tk, first);  // (n, d)
  Var z = cross_mlp_->residual(add(x, a), eps);
  const SeqBatch batch{{0, pool.position(0), n}};
  for (size_t l = 0; l < blocks_.size(); ++l)
    z = blocks_[l]->forward_cached(z, batch, pool.layer(l));
  pool.advance(0, n);
  return z;  // (n, d)
}

Tensor PerceiverAR::head_logits(const Tensor& h) const {
  const int64_t n = h.size(0), d = spec_.d_model, V = spec_.vocab;
  Var hf = rmsnorm(Var(h), norm_f_, static_cast<float>(spec_.norm_eps));
  Tensor logits = Tensor::empty({n, V});  // (n, V)
  cpu::linear_fwd(n, V, d, hf.data(), head().value(), 0.0f, logits.data());
  return logits;
}

std::unique_ptr<StatePool> PerceiverAR::new_latent_pool() const {
  std::vector<std::unique_ptr<LayerState>> layers;
  for (const auto& b : blocks_) layers.push_back(b->mixer().new_state(1, c_.num_latents));
  return std::make_unique<StatePool>(std::move(layers), 1, c_.num_latents);
}

int64_t PerceiverAR::state_bytes(int64_t context) const {
  // The inputs' keys and values over the window, plus the latents' KV caches.
  const int64_t w = std::min(context, c_.context_length);
  const int64_t lat = std::min(context, c_.num_latents);
  int64_t n = 2 * w * kv_width() * static_cast<int64_t>(sizeof(float));
  for (const auto& b : blocks_) n += b->mixer().state_bytes(lat);
  return n;
}

double PerceiverAR::flops_per_token(int64_t context) const {
  // Per generated token: its input keys and values, a latent through every layer (the cross
  // layer attends over the window), and, amortised, one re-encoded latent per new token.
  const double d = static_cast<double>(spec_.d_model), kvd = static_cast<double>(kv_width());
  const double w = static_cast<double>(std::min(context, c_.context_length));
  const double lat = static_cast<double>(std::min(context, c_.num_latents));
  const double hd_all = static_cast<double>(c_.num_attention_heads * c_.head_dim());
  double latent =
      2.0 * (2.0 * d * hd_all) + 2.0 * 2.0 * hd_all * w + 6.0 * d * c_.intermediate_size;
  for (const auto& b : blocks_)
    latent += b->mixer().flops_per_token(lat) + 6.0 * d * c_.intermediate_size;
  return 2.0 * 2.0 * d * kvd + 2.0 * latent + 2.0 * d * static_cast<double>(spec_.vocab);
}

std::vector<std::string> PerceiverAR::describe() const {
  std::string pattern = "X";
  for (const auto& b : blocks_) pattern += b->spec().kind;
  return {"layers:     " + pattern + " (X: cross-attention from the latents to the inputs)",
          "window:     " + std::to_string(c_.context_length) + " inputs, " +
              std::to_string(c_.num_latents) + " latents (logits and loss on the latents)",
          "rotary:     " + std::to_string(c_.rotary_dim()) + " of " +
              std::to_string(c_.head_dim()) + " dims per head, wavelengths up to " +
              std::to_string(static_cast<int64_t>(c_.rope_theta))};
}

}  // namespace pf
