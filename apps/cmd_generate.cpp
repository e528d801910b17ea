// `postformer generate`: streams a continuation of a prompt from a model directory,
// optionally saving or restoring the inference state.
#include <cstdio>
#include <memory>

#include "apps/commands.h"
#include "apps/weights_flag.h"
#include "base/checks.h"
#include "base/error.h"
#include "base/memory_stats.h"
#include "base/threads.h"
#include "base/timer.h"
#include "data/tokenizer.h"
#include "infer/generate.h"
#include "infer/state_file.h"
#include "io/checkpoint.h"
#include "models/limits.h"

namespace pf::cli {

namespace {
struct GenArgs {
  std::string model_dir, prompt, tokens_file, save_state, load_state, weights;
  int64_t context = 0;
  GenerateOptions gen;
  int threads = 0;
  bool print_ids = false, stats = false;
  // Read as doubles and range-checked before narrowing: 1e300 must not reach a float cast.
  double temperature = 0.8, top_p = 1.0;
};

void run_generate(GenArgs& a) {
  set_num_threads(a.threads);
  check_range("--max-tokens", a.gen.max_new, 0, int64_t{1} << 40);
  check_range("--temperature", a.temperature, 0.0, 100.0);
  check_range("--top-p", a.top_p, 0.0, 1.0, /*open_lo=*/true);
  a.gen.sampling.temperature = static_cast<float>(a.temperature);
  a.gen.sampling.top_p = static_cast<float>(a.top_p);
  check_sampling(a.gen.sampling);
  check_range("--context", a.context, 0, kMaxPositions);
  auto model = load_model_with_weights(a.model_dir, a.weights);
  // Token ids in and out need no tokenizer, so any model directory works that way.
  std::unique_ptr<Tokenizer> tok;
  // Loaded whenever the directory has one: its holes are never sampled, even for ids out.
  if (a.tokens_file.empty() || !a.print_ids ||
      has_tokenizer_files(resolve_checkpoint_dir(a.model_dir)))
    tok = load_tokenizer(resolve_checkpoint_dir(a.model_dir), model->vocab_size());
  std::vector<int32_t> prompt;
  if (!a.tokens_file.empty()) {
    prompt = read_token_file(a.tokens_file);
  } else if (!a.load_state.empty()) {
    prompt = tok->encode(a.prompt);  // appended to the saved state: no BOS
  } else {
    // No prompt: start from a line break (byte and BPE models) or just BOS (SentencePiece).
    prompt = a.prompt.empty() && tok->name() == "sentencepiece"
                 ? tok->encode_prompt("")
                 : tok->encode_prompt(a.prompt.empty() ? "\n" : a.prompt);
  }
  for (int32_t id : prompt)
    PF_CHECK(id >= 0 && id < model->vocab_size(), a.tokens_file.empty() ? "" : a.tokens_file + ": ",
             "prompt token ", id, " is outside the vocabulary of ", model->vocab_size());
  // The state file is ours to replace; anything else at that path is not.
  if (!a.save_state.empty()) check_state_path(a.save_state);
  PF_CHECK(a.context <= model->max_context(), "--context ", a.context, " exceeds the model's ",
           model->max_context(), " positions");
  const int64_t cap = a.context > 0 ? a.context : model->max_context();
  // The KV cache is allocated up front: it must fit in memory.
  const int64_t ram = physical_memory_bytes();
  PF_CHECK(ram == 0 || model->state_bytes(cap) <= ram / 2, "a context of ", cap, " needs ",
           model->state_bytes(cap) >> 20,
           " MiB of inference state, more than half of this "
           "machine's memory; pass a smaller --context");
  auto session = model->new_session(cap);
  if (!a.load_state.empty()) load_session_state(a.load_state, *model, *session);
  if (tok) {
    a.gen.valid_vocab = std::min(tok->vocab_size(), model->vocab_size());
    a.gen.stop_ids = tok->stop_ids();
    a.gen.banned_ids = tok->unused_ids();
  }
  a.gen.feed_last = !a.save_state.empty();
  if (!a.print_ids && a.tokens_file.empty()) std::fputs(a.prompt.c_str(), stdout);
  std::fflush(stdout);
  Timer t;
  auto out = generate(*session, prompt, a.gen, [&](int32_t id) {
    if (a.print_ids)
      std::printf("%d\n", id);
    else
      std::fputs(tok->decode_token(id).c_str(), stdout);
    std::fflush(stdout);
  });
  if (!a.print_ids) std::printf("\n");
  if (!a.save_state.empty()) save_session_state(a.save_state, *model, *session);
  if (a.stats)
    std::fprintf(stderr, "%zu prompt + %zu generated tokens in %.2f s; position %ld\n",
                 prompt.size(), out.size(), t.seconds(), static_cast<long>(session->position()));
}
}  // namespace

void add_generate(CLI::App& app) {
  auto a = std::make_shared<GenArgs>();
  auto* cmd = app.add_subcommand("generate", "Stream generated text from a model directory");
  cmd->add_option("--model", a->model_dir, "Model directory (config.json + model.safetensors)")
      ->required();
  cmd->add_option("--prompt", a->prompt, "Prompt text (default: a line break)");
  cmd->add_option("--tokens", a->tokens_file, "Prompt as a file of whitespace-separated token ids");
  cmd->add_option("--max-tokens", a->gen.max_new, "Tokens to generate (0 = only read the prompt)")
      ->capture_default_str();
  cmd->add_option("--temperature", a->temperature, "Sampling temperature (0 = greedy)")
      ->capture_default_str();
  cmd->add_option("--top-k", a->gen.sampling.top_k, "Keep the k most likely tokens (0 = off)")
      ->capture_default_str();
  cmd->add_option("--top-p", a->top_p, "Nucleus sampling mass (1 = off)")->capture_default_str();
  cmd->add_option("--seed", a->gen.seed, "Sampling seed")->check(kUnsigned)->capture_default_str();
  cmd->add_option("--context", a->context, "KV-cache capacity (0 = model maximum)");
  cmd->add_option("--save-state", a->save_state,
                  "After generating, save the inference state (cache or recurrent state) here");
  cmd->add_option("--load-state", a->load_state,
                  "Continue from a saved state; --prompt is then appended to it");
  cmd->add_option("--threads", a->threads, "Worker threads (0 = all cores)");
  add_weights_flag(cmd, a->weights);
  cmd->add_flag("--print-ids", a->print_ids, "Print token ids, one per line, instead of text");
  cmd->add_flag("--stats", a->stats, "Report token counts and time on stderr");
  cmd->callback([a] { run_generate(*a); });
}

}  // namespace pf::cli
