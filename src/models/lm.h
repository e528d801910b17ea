// The language-model interface every architecture implements, and the registry that
// maps an architecture name to its factory. Adding an architecture = one folder under
// models/ plus one registration line.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "autograd/tape.h"
#include "models/model.h"
#include "nn/params.h"

namespace pf {

// Incremental inference: holds the per-layer cache or recurrent state.
class InferenceSession {
 public:
  virtual ~InferenceSession() = default;
  // Feeds n tokens at the current position. Returns logits (n, V) when all_logits,
  // else only the last token's logits (1, V). Either way last_logits() is updated.
  virtual Tensor forward(const int32_t* tokens, int64_t n, bool all_logits) = 0;
  virtual int64_t position() const = 0;
  virtual int64_t capacity() const = 0;  // max tokens this session can hold
  virtual void reset() = 0;
  // The cache or recurrent state after position() tokens, as named tensors.
  virtual std::vector<std::pair<std::string, Tensor>> export_state() const = 0;
  // Restores what export_state() produced on an identical model at `position`.
  virtual void import_state(const std::vector<std::pair<std::string, Tensor>>& state,
                            int64_t position) = 0;

  // (1, V) logits after the last token fed; undefined before the first forward.
  const Tensor& last_logits() const { return last_logits_; }
  void set_last_logits(Tensor t) { last_logits_ = std::move(t); }

 protected:
  // Keeps the last row of logits (rows, V).
  void remember_logits(const Tensor& logits) {
    last_logits_ = logits.slice(0, logits.size(0) - 1, logits.size(0)).clone();
  }
  Tensor last_logits_;
};

struct ForwardOptions {
  float dropout = 0.0f;       // training-time dropout on residual branches
  uint64_t dropout_seed = 0;  // varies per step so masks differ
  bool recompute = false;     // keep only block inputs; recompute blocks in the backward
};

class LanguageModel : public Model {
 public:
  virtual int64_t vocab_size() const = 0;
  virtual int64_t max_context() const = 0;
  // True when inference state is constant in context (recurrent models).
  virtual bool recurrent() const { return false; }
  // True when evaluation streams the whole text through one session: recurrent state, or
  // Perceiver AR's window that slides the way generation does.
  virtual bool stream_eval() const { return recurrent(); }
  // forward() over T tokens returns logits for the last loss_rows(T) positions of each
  // sequence (all T for a decoder; the latents for Perceiver AR).
  virtual int64_t loss_rows(int64_t T) const { return T; }
  // tokens: B*T ids -> logits (B*T, V), recorded on the active tape if any.
  virtual Var forward(const std::vector<int32_t>& tokens, int64_t B, int64_t T,
                      const ForwardOptions& opt) = 0;
  virtual std::unique_ptr<InferenceSession> new_session(int64_t max_tokens) = 0;
  // Bytes of inference state (KV cache or recurrent state) at a context length.
  virtual int64_t state_bytes(int64_t context) const = 0;
  // Forward FLOPs per token at a context length (for throughput reporting).
  virtual double flops_per_token(int64_t context) const = 0;
  // Lines for `info` beyond the config (layer pattern, per-head memory, ...).
  virtual std::vector<std::string> describe() const { return {}; }
};

// Architectures register in models/registry.h; these look them up by config or name.
// Validates a config and returns its parameter count, before any tensor is allocated.
int64_t config_param_count(const nlohmann::json& config);
// The model_type a config stands for: its "model_type", or one recognised from the
// layout of a config without it (state-spaces Mamba); errors when neither.
std::string detect_model_type(const nlohmann::json& config);
// Builds a randomly initialised model from a config; arch is taken from "model_type".
std::unique_ptr<LanguageModel> create_model(const nlohmann::json& config, uint64_t seed);
std::string model_type_for_arch(const std::string& arch);
// The config.json a model built from `config` would save (defaults filled in, keys
// normalised): two configs describe the same model when these are equal.
nlohmann::json canonical_config(const nlohmann::json& config);
// Completes a config from the tensor names of its checkpoint where the config alone does
// not tell the layout (e.g. flash-linear-attention's fused or separate MLP).
void adapt_config_to_weights(nlohmann::json& config, const std::vector<std::string>& names);
std::vector<std::string> registered_archs();

}  // namespace pf
