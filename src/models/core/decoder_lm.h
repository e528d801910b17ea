// The one decoder language model every architecture is: embedding -> blocks -> final
// RMSNorm -> head (tied to the embedding unless the config says otherwise). A family is a
// config adapter that turns its config.json into a StackSpec; a hybrid is a StackSpec whose
// blocks hold different mixers.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "models/core/block.h"
#include "models/core/state_pool.h"
#include "models/lm.h"

namespace pf {

constexpr int64_t kUnboundedContext = int64_t{1} << 40;  // recurrent: no context limit

struct StackSpec {
  std::string arch;       // CLI name, e.g. "mamba2"
  nlohmann::json config;  // the config.json the model saves (canonical)
  int64_t vocab = 0;      // embedding rows (padded where the family pads)
  int64_t d_model = 0;
  double norm_eps = 1e-5;  // block and final RMSNorms
  bool tied = true;
  std::string embedding, final_norm, head = "lm_head.weight";  // tensor names
  uint64_t rng_stream = 0;  // keeps each family's initialisation what it was
  int64_t max_context = kUnboundedContext;
  int64_t prefill_chunk = 1024;  // prompt tokens per cached forward (bounds activations)
  std::vector<BlockSpec> layers;
  // A family whose stack is not a plain decoder (Perceiver AR) builds its own model from
  // the spec, and counts the weights of the layers `layers` does not list here.
  std::function<std::unique_ptr<LanguageModel>(const StackSpec&, uint64_t seed)> make_model;
  int64_t extra_params = 0;
  int64_t param_count() const;  // exact, without building anything
};

// Which logits a cached forward returns.
enum class LogitRows { LastOfEachRun, All };

class DecoderLM : public LanguageModel {
 public:
  DecoderLM(StackSpec spec, uint64_t seed);
  std::string arch() const override { return spec_.arch; }
  int64_t vocab_size() const override { return spec_.vocab; }
  int64_t max_context() const override { return spec_.max_context; }
  bool recurrent() const override;
  void visit_params(const ParamVisitor& visit) override;
  Var forward(const std::vector<int32_t>& tokens, int64_t B, int64_t T,
              const ForwardOptions& opt) override;
  std::unique_ptr<InferenceSession> new_session(int64_t max_tokens) override;
  nlohmann::json config_json() const override { return spec_.config; }
  int64_t state_bytes(int64_t context) const override;
  double flops_per_token(int64_t context) const override;
  std::vector<std::string> describe() const override;

  // State for `slots` sequences of up to `capacity` tokens each.
  std::unique_ptr<StatePool> new_pool(int64_t slots, int64_t capacity);
  // Advances every run of `batch` by its tokens (rows sequence-major, batch.rows() ids) and
  // their slots' positions. Runs must start where their slots are. Returns logits
  // (runs, V) for the last token of each run, or (rows, V) for every row.
  Tensor forward_cached(const int32_t* tokens, const SeqBatch& batch, StatePool& pool,
                        LogitRows which = LogitRows::LastOfEachRun);

  const StackSpec& spec() const { return spec_; }
  size_t num_layers() const { return blocks_.size(); }
  Block& block(size_t l) { return *blocks_[l]; }

 private:
  const Var& head() const { return spec_.tied ? embed_ : lm_head_; }
  StackSpec spec_;
  Var embed_;  // (V, d)
  std::vector<std::unique_ptr<Block>> blocks_;
  Var norm_f_;   // (d)
  Var lm_head_;  // (V, d), undefined when tied
};

}  // namespace pf
