#include "models/core/decoder_lm.h"

#include <algorithm>
#include <set>

#include "autograd/ops.h"
#include "base/checks.h"
#include "base/error.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/typed_linear.h"

namespace pf {

int64_t StackSpec::param_count() const {
  int64_t n = checked_mul(vocab, d_model * (tied ? 1 : 2), "config: model size") + d_model;
  n = checked_add(n, extra_params, "config: model size");
  for (const BlockSpec& b : layers)
    n = checked_add(n, b.param_count(d_model), "config: model size");
  return n;
}

DecoderLM::DecoderLM(StackSpec spec, uint64_t seed) : spec_(std::move(spec)) {
  PF_CHECK(!spec_.layers.empty(), "a model needs at least one layer");
  PF_CHECK(!spec_.make_model, spec_.arch, " is not a plain decoder stack");
  Rng rng(seed, spec_.rng_stream);
  const int64_t d = spec_.d_model;
  embed_ = normal_param({spec_.vocab, d}, 0.02f, rng);
  const float eps = static_cast<float>(spec_.norm_eps);
  for (const BlockSpec& b : spec_.layers)
    blocks_.push_back(std::make_unique<Block>(b, d, eps, rng));
  norm_f_ = constant_param({d}, 1.0f);
  if (!spec_.tied) lm_head_ = normal_param({spec_.vocab, d}, 0.02f, rng);
}

bool DecoderLM::recurrent() const {
  return std::all_of(blocks_.begin(), blocks_.end(),
                     [](const auto& b) { return b->mixer().bounded_state(); });
}

void DecoderLM::visit_params(const ParamVisitor& visit) {
  visit(spec_.embedding, embed_, ParamKind::Embedding);
  for (auto& b : blocks_) b->visit(visit);
  visit(spec_.final_norm, norm_f_, ParamKind::Norm);
  if (!spec_.tied) visit(spec_.head, lm_head_, ParamKind::Matrix);
}

Var DecoderLM::forward(const std::vector<int32_t>& tokens, int64_t B, int64_t T,
                       const ForwardOptions& opt) {
  PF_CHECK(T <= spec_.max_context, "sequence length ", T, " exceeds the model's context of ",
           spec_.max_context);
  Var x = embedding(embed_, tokens, B, T);  // (B, T, d)
  for (size_t l = 0; l < blocks_.size(); ++l) {
    // By value: the backward may re-run this after forward() has returned.
    const uint64_t seed = opt.dropout_seed + 2 * l;
    const float p = opt.dropout;
    Block* blk = blocks_[l].get();
    auto fn = [blk, B, T, p, seed](const Var& xin) { return blk->forward(xin, B, T, 0, p, seed); };
    x = opt.recompute ? checkpoint(fn, x) : fn(x);
  }
  x = rmsnorm(x, norm_f_, static_cast<float>(spec_.norm_eps));
  return reshape(linear(x, head()), {B * T, spec_.vocab});  // (B*T, V)
}

std::unique_ptr<StatePool> DecoderLM::new_pool(int64_t slots, int64_t capacity) {
  PF_CHECK(capacity > 0, "session capacity must be positive");
  std::vector<std::unique_ptr<LayerState>> layers;
  for (auto& b : blocks_) layers.push_back(b->mixer().new_state(slots, capacity));
  return std::make_unique<StatePool>(std::move(layers), slots, capacity);
}

Tensor DecoderLM::forward_cached(const int32_t* tokens, const SeqBatch& batch, StatePool& pool,
                                 LogitRows which) {
  NoGradScope no_grad;
  const int64_t rows = batch.rows(), d = spec_.d_model, V = spec_.vocab;
  PF_CHECK(rows > 0, "forward: no tokens");
  PF_CHECK(pool.num_layers() == blocks_.size(), "state pool belongs to another model");
  std::set<int64_t> seen;
  for (const SeqRun& r : batch.runs()) {
    PF_CHECK(seen.insert(r.slot).second, "slot ", r.slot, " appears twice in one batch");
    PF_CHECK(r.pos == pool.position(r.slot), "slot ", r.slot, " is at position ",
             pool.position(r.slot), ", not ", r.pos);
    PF_CHECK(r.pos + r.len <= pool.capacity(), "context full: ", r.pos + r.len,
             " tokens exceed the session capacity ", pool.capacity());
    PF_CHECK(r.pos + r.len <= spec_.max_context, "context full: ", r.pos + r.len,
             " tokens exceed the model's context of ", spec_.max_context);
  }
  std::vector<int32_t> ids(tokens, tokens + rows);
  for (int32_t id : ids)
    PF_CHECK(id >= 0 && id < V, "token id ", id, " is outside the vocabulary of ", V);
  Var x = reshape(embedding(embed_, ids, 1, rows), {rows, d});  // (rows, d)
  for (size_t l = 0; l < blocks_.size(); ++l)
    x = blocks_[l]->forward_cached(x, batch, pool.layer(l));
  for (const SeqRun& r : batch.runs()) pool.advance(r.slot, r.len);
  // Only the rows whose logits are wanted go through the final norm and the head.
  Tensor xs;  // (n, d)
  if (which == LogitRows::All) {
    xs = x.value().contiguous();
  } else {
    const auto& runs = batch.runs();
    xs = Tensor::empty({static_cast<int64_t>(runs.size()), d});
    for (size_t i = 0; i < runs.size(); ++i) {
      const int64_t r = batch.row0(i) + runs[i].len - 1;
      xs.slice(0, i, i + 1).copy_from(x.value().slice(0, r, r + 1));
    }
  }
  const int64_t n = xs.size(0);
  Var hf = rmsnorm(Var(xs), norm_f_, static_cast<float>(spec_.norm_eps));
  Tensor logits = Tensor::empty({n, V});  // (n, V)
  cpu::linear_fwd(n, V, d, hf.data(), head().value(), 0.0f, logits.data());
  return logits;
}

int64_t DecoderLM::state_bytes(int64_t context) const {
  int64_t n = 0;
  for (const auto& b : blocks_) n += b->mixer().state_bytes(context);
  return n;
}

double DecoderLM::flops_per_token(int64_t context) const {
  const double d = static_cast<double>(spec_.d_model);
  double f = 2.0 * d * static_cast<double>(spec_.vocab);  // head
  for (const auto& b : blocks_) {
    f += b->mixer().flops_per_token(context);
    if (b->spec().mlp.layout != MlpLayout::None) f += 6.0 * d * b->spec().mlp.ffn;
  }
  return f;
}

std::vector<std::string> DecoderLM::describe() const {
  std::vector<std::string> out;
  std::string pattern;
  for (const auto& b : blocks_) pattern += b->spec().kind;
  out.push_back("layers:     " + pattern);
  // Layers that say the same share one line: "layers 0,2,5: ...".
  std::vector<std::pair<std::string, std::string>> lines;  // (text, layer list)
  for (size_t l = 0; l < blocks_.size(); ++l)
    for (const std::string& s : blocks_[l]->mixer().describe()) {
      auto it =
          std::find_if(lines.begin(), lines.end(), [&](const auto& p) { return p.first == s; });
      if (it == lines.end())
        lines.emplace_back(s, std::to_string(l));
      else
        it->second.append(",").append(std::to_string(l));  // not "," + ...: GCC 12 -Wrestrict
    }
  for (const auto& [text, layers] : lines) {
    std::string line = "layers ";
    line += layers;
    line += ": ";
    line += text;
    out.push_back(std::move(line));
  }
  return out;
}

namespace {

// One sequence: a pool of one slot.
class LmSession : public InferenceSession {
 public:
  LmSession(DecoderLM& m, int64_t max_tokens)
      : m_(m), cap_(m.recurrent() ? kUnboundedContext : max_tokens) {
    PF_CHECK(max_tokens > 0, "session capacity must be positive");
    pool_ = m.new_pool(1, cap_);
  }

  Tensor forward(const int32_t* tokens, int64_t n, bool all_logits) override {
    PF_CHECK(n > 0, "forward: no tokens");
    PF_CHECK(position() + n <= cap_, "context full: ", position() + n,
             " tokens exceed the session capacity ", cap_);
    const int64_t chunk = m_.spec().prefill_chunk;
    Tensor out = all_logits ? Tensor::empty({n, m_.vocab_size()}) : Tensor();
    for (int64_t s = 0; s < n; s += chunk) {
      const int64_t len = std::min(chunk, n - s);
      const SeqBatch batch{{0, position(), len}};
      Tensor logits = m_.forward_cached(tokens + s, batch, *pool_,
                                        all_logits ? LogitRows::All : LogitRows::LastOfEachRun);
      if (all_logits)
        out.slice(0, s, s + len).copy_from(logits);
      else if (s + len == n)
        out = logits;
    }
    remember_logits(out);
    return out;
  }
  int64_t position() const override { return pool_->position(0); }
  int64_t capacity() const override { return cap_; }
  void reset() override { pool_->clear(0); }
  std::vector<std::pair<std::string, Tensor>> export_state() const override {
    return pool_->save(0);
  }
  void import_state(const std::vector<std::pair<std::string, Tensor>>& state,
                    int64_t position) override {
    pool_->load(0, state, position);
  }

 private:
  DecoderLM& m_;
  int64_t cap_;
  std::unique_ptr<StatePool> pool_;
};

}  // namespace

std::unique_ptr<InferenceSession> DecoderLM::new_session(int64_t max_tokens) {
  return std::make_unique<LmSession>(*this, max_tokens);
}

}  // namespace pf
