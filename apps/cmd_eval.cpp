// `postformer eval`: loss, bits per byte and perplexity of a model on a text or token file.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

#include "apps/commands.h"
#include "apps/weights_flag.h"
#include "base/checks.h"
#include "base/error.h"
#include "base/threads.h"
#include "data/corpus.h"
#include "data/tokenizer.h"
#include "infer/generate.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "models/limits.h"

namespace pf::cli {

namespace {
struct EvalArgs {
  std::string model_dir, data, tokens_file, logprobs_file, weights;
  int64_t context = 0, stride = 0;
  int threads = 0;
};

void run_eval(const EvalArgs& a) {
  set_num_threads(a.threads);
  PF_CHECK(a.data.empty() != a.tokens_file.empty(), "give exactly one of --data or --tokens");
  check_range("--context", a.context, 0, kMaxPositions);
  for (const std::string& in : {a.data, a.tokens_file})
    PF_CHECK(a.logprobs_file.empty() || in.empty() || !same_file(in, a.logprobs_file),
             "--logprobs ", a.logprobs_file, " is the input file; give another path");
  auto model = load_model_with_weights(a.model_dir, a.weights);
  const std::string dir = resolve_checkpoint_dir(a.model_dir);
  std::vector<int32_t> ids;
  double bytes = 0;
  if (!a.data.empty()) {
    auto tok = load_tokenizer(dir, model->vocab_size());
    const std::string text = read_text_file(a.data);
    ids = tok->encode_prompt(text);
    PF_CHECK(ids.size() >= 2, a.data, ": ", ids.size(), " token(s); evaluation needs at least 2");
    // The first token is context, not predicted: count the bytes of the predicted ones.
    bytes = static_cast<double>(text.size()) - tok->decode_token(ids[0]).size();
  } else {
    ids = read_token_file(a.tokens_file);
    // Byte-level ids are bytes, so bits per byte is defined for them too.
    if (!has_tokenizer_files(dir)) bytes = static_cast<double>(ids.size() - 1);
  }
  // Recurrent models carry state across windows, so ctx only bounds memory for them.
  const int64_t ctx = a.context > 0 ? a.context : std::min<int64_t>(model->max_context(), 2048);
  std::vector<float> lps;
  for (size_t i = 0; i < ids.size(); ++i)
    PF_CHECK(ids[i] < model->vocab_size(), a.tokens_file.empty() ? a.data : a.tokens_file,
             ": token ", ids[i], " (entry ", i + 1, ") is outside the model's vocabulary of ",
             model->vocab_size());
  PF_CHECK(ids.size() >= 2, a.tokens_file.empty() ? a.data : a.tokens_file, ": ", ids.size(),
           " token(s); evaluation needs at least 2");
  check_range("--stride", a.stride, 0, ctx);
  EvalResult r =
      evaluate_tokens(*model, ids, ctx, a.logprobs_file.empty() ? nullptr : &lps, a.stride);
  // Finite weights give finite losses; anything else must not pass as a result.
  PF_CHECK(std::isfinite(r.loss()), "evaluation produced a loss of ", r.loss(),
           " (the model's computation overflowed)");
  std::printf("tokens %ld | loss %.6f nats/token | perplexity %.4f", static_cast<long>(r.predicted),
              r.loss(), std::exp(r.loss()));
  if (bytes > 0) std::printf(" | bits per byte %.6f", r.total_nats / std::log(2.0) / bytes);
  std::printf("\n");
  if (!a.logprobs_file.empty()) {
    std::string out;
    char buf[32];
    for (float v : lps) {
      std::snprintf(buf, sizeof buf, "%.9g\n", v);
      out += buf;
    }
    write_file_atomic(a.logprobs_file, out);
  }
}
}  // namespace

void add_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand("eval", "Score a model on a text file or a token-id file");
  cmd->add_option("--model", a->model_dir, "Model directory")->required();
  cmd->add_option("--data", a->data, "UTF-8 text file");
  cmd->add_option("--tokens", a->tokens_file, "File of whitespace-separated token ids");
  cmd->add_option("--logprobs", a->logprobs_file,
                  "Write log p(token i+1 | tokens 0..i) per line to this file");
  cmd->add_option(
      "--context", a->context,
      "Window length (0 = min(model maximum, 2048)); recurrent models carry state across "
      "windows, Perceiver AR slides its window as generation does");
  cmd->add_option("--stride", a->stride,
                  "Attention models: each next window ends this many tokens later and scores "
                  "only those, so every token has context - stride tokens before it (0 = the "
                  "context: independent windows)");
  cmd->add_option("--threads", a->threads, "Worker threads (0 = all cores)");
  add_weights_flag(cmd, a->weights);
  cmd->callback([a] { run_eval(*a); });
}

}  // namespace pf::cli
