// `postformer train`: trains a fresh model (or resumes a checkpoint) on a text file.
#include <climits>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "apps/commands.h"
#include "apps/model_flags.h"
#include "base/checks.h"
#include "base/error.h"
#include "base/threads.h"
#include "data/corpus.h"
#include "io/checkpoint.h"
#include "io/run_dir.h"
#include "io/config_json.h"
#include "models/lm.h"
#include "train/trainer.h"

namespace pf::cli {

namespace {
constexpr int64_t kStepsNotGiven = INT64_MIN;

struct TrainArgs {
  ModelFlags model;
  TrainOptions opt;
  std::string data = "data/kjv.txt";
  std::string resume, init_from;
  double val_fraction = 0.01;
  int threads = 0;
  bool overwrite = false;
  TrainArgs() { opt.steps = kStepsNotGiven; }  // then 1000, or the resumed run's own total
};

void run_train(TrainArgs& a) {
  set_num_threads(a.threads);
  namespace fs = std::filesystem;
  std::unique_ptr<LanguageModel> model;
  PF_CHECK(a.resume.empty() || a.init_from.empty(), "give at most one of --resume and --init-from");
  const bool steps_given = a.opt.steps != kStepsNotGiven;
  PF_CHECK(!steps_given || a.opt.steps >= 1, "--steps ", a.opt.steps, " is outside [1, 2^40]");
  check_range("--val-fraction", a.val_fraction, 0.0, 1.0, true, true);
  if (a.opt.out_dir.empty()) a.opt.out_dir = a.resume.empty() ? "runs/default" : a.resume;
  // --resume RUN/step-N continues the run in RUN, not inside the checkpoint directory.
  if (!a.resume.empty() && a.opt.out_dir == a.resume &&
      fs::exists(fs::path(a.resume).parent_path() / ".postformer-run") &&
      fs::exists(fs::path(a.resume) / "config.json"))
    a.opt.out_dir = fs::path(a.resume).parent_path().string();
  const bool same_dir =
      !a.resume.empty() &&
      (fs::weakly_canonical(a.opt.out_dir) == fs::weakly_canonical(a.resume) ||
       fs::weakly_canonical(a.opt.out_dir) == fs::weakly_canonical(a.resume).parent_path());
  if (!a.init_from.empty())
    PF_CHECK(fs::weakly_canonical(a.opt.out_dir) != fs::weakly_canonical(a.init_from),
             "--out must differ from --init-from, so the original model stays intact");
  // Refused before anything is loaded or trained: the run must be able to save at the end.
  RunDir::check_out_dir(a.opt.out_dir, a.overwrite, same_dir);
  std::string source_dir;  // where the model (and its tokenizer) come from, if anywhere
  if (!a.resume.empty()) {
    source_dir = resolve_checkpoint_dir(a.resume);
    // Resume keeps the run's own hyper-parameters; only length, time and output may change.
    const std::string dir = source_dir;
    TrainOptions saved =
        read_trainer_state((fs::path(dir) / "trainer_state.json").string()).options;
    if (steps_given) saved.steps = a.opt.steps;  // else the run's own schedule length
    saved.time_limit = a.opt.time_limit;
    saved.out_dir = a.opt.out_dir;
    saved.log_every = a.opt.log_every;
    saved.save_every = a.opt.save_every;
    saved.quiet = a.opt.quiet;
    saved.eval_every = a.opt.eval_every;
    a.opt = saved;
    model = create_model(read_json_file((fs::path(dir) / "config.json").string()), a.opt.seed);
  } else if (!a.init_from.empty()) {
    // Transfer learning: weights, config layout and tokenizer all come from the source.
    source_dir = resolve_checkpoint_dir(a.init_from);
    model = load_model(source_dir);
    std::printf("initialised from %s\n", source_dir.c_str());
  } else {
    try {
      model = create_model(a.model.config(), a.opt.seed);
    } catch (const Error& e) {
      fail("the model shape flags (--arch, --d-model, --heads, ...) describe no valid model: ",
           e.what());
    }
  }
  if (a.opt.steps == kStepsNotGiven) a.opt.steps = 1000;
  a.opt.validate();
  std::unique_ptr<Tokenizer> tok =
      source_dir.empty() ? std::make_unique<ByteTokenizer>() : load_tokenizer(source_dir);
  PF_CHECK(model->vocab_size() >= tok->vocab_size(), "model vocabulary ", model->vocab_size(),
           " is smaller than the tokenizer's ", tok->vocab_size());
  if (!source_dir.empty())
    for (const char* f : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json",
                          "special_tokens_map.json", "generation_config.json"})
      if (fs::exists(fs::path(source_dir) / f))
        a.opt.extra_files.push_back((fs::path(source_dir) / f).string());
  Corpus corpus = Corpus::from_text_file(a.data, *tok, a.val_fraction);
  std::printf("model %s: %.2fM parameters | data %s: %ld train / %ld val tokens | %d threads\n",
              model->arch().c_str(), model->num_params() / 1e6, a.data.c_str(),
              static_cast<long>(corpus.train_tokens()), static_cast<long>(corpus.val_tokens()),
              num_threads());
  Trainer trainer(*model, corpus, a.opt);
  if (!a.resume.empty()) {
    trainer.resume_from(a.resume);
    PF_CHECK(trainer.step() <= a.opt.steps, "--steps ", a.opt.steps, " is below the step ",
             trainer.step(), " the run has reached; give a larger total");
    std::printf("resumed from %s at step %ld\n", a.resume.c_str(),
                static_cast<long>(trainer.step()));
  }
  TrainResult r = trainer.run();
  std::printf("done: %ld steps in %.1f s, %.0f tokens/s, validation %.4f bits per byte\n",
              static_cast<long>(r.steps_done), r.seconds, r.tokens_per_sec, r.val_bpb);
  if (!trainer.last_checkpoint().empty())
    std::printf("checkpoint: %s (%s)\n", a.opt.out_dir.c_str(), trainer.last_checkpoint().c_str());
}
}  // namespace

void add_train(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  auto* cmd = app.add_subcommand("train", "Train a language model on a text file");
  a->model.add_to(*cmd);
  cmd->add_option("--data", a->data, "UTF-8 text file to train on")->capture_default_str();
  cmd->add_option("--out", a->opt.out_dir,
                  "Checkpoint directory (default: runs/default, or the --resume directory)");
  cmd->add_option("--resume", a->resume, "Continue from this checkpoint directory");
  cmd->add_flag("--overwrite", a->overwrite,
                "Let --out name the directory of another run: its checkpoint is replaced once "
                "this run saves (files postformer did not write are never removed)");
  cmd->add_option("--init-from", a->init_from,
                  "Fine-tune the model in this directory (our checkpoints or a published layout); "
                  "its tokenizer is used and the result keeps its layout");
  cmd->add_option("--steps", a->opt.steps,
                  "Total optimizer steps (default 1000; on --resume, the run's own total)");
  cmd->add_option("--time-limit", a->opt.time_limit, "Stop after this many seconds (0 = none)")
      ->capture_default_str();
  cmd->add_option("--batch", a->opt.batch, "Sequences per micro-batch")->capture_default_str();
  cmd->add_option("--seq", a->opt.seq, "Tokens per sequence")->capture_default_str();
  cmd->add_option("--accum", a->opt.accum, "Micro-batches per step (gradient accumulation)")
      ->capture_default_str();
  cmd->add_option("--lr", a->opt.lr, "Peak learning rate")->capture_default_str();
  cmd->add_option("--min-lr-ratio", a->opt.min_lr_ratio, "Final LR as a fraction of the peak")
      ->capture_default_str();
  cmd->add_option("--warmup", a->opt.warmup, "Linear warmup steps")->capture_default_str();
  cmd->add_option("--weight-decay", a->opt.adam.weight_decay,
                  "AdamW decoupled weight decay (matrices only)")
      ->capture_default_str();
  cmd->add_option("--beta1", a->opt.adam.beta1, "AdamW beta1")->capture_default_str();
  cmd->add_option("--beta2", a->opt.adam.beta2, "AdamW beta2")->capture_default_str();
  cmd->add_option("--clip", a->opt.clip, "Gradient norm clip (0 = off)")->capture_default_str();
  cmd->add_option("--dropout", a->opt.dropout, "Residual dropout")->capture_default_str();
  cmd->add_flag("--recompute", a->opt.recompute,
                "Recompute each block in the backward: activation memory of one block, not all");
  cmd->add_option("--eval-every", a->opt.eval_every, "Validate every N steps")
      ->capture_default_str();
  cmd->add_option("--eval-batches", a->opt.eval_batches, "Validation batches per evaluation")
      ->capture_default_str();
  cmd->add_option("--log-every", a->opt.log_every, "Progress line every N steps")
      ->capture_default_str();
  cmd->add_option("--save-every", a->opt.save_every, "Checkpoint every N steps (0 = at end only)")
      ->capture_default_str();
  cmd->add_option("--val-fraction", a->val_fraction, "Held-out fraction of the data")
      ->capture_default_str();
  cmd->add_option("--seed", a->opt.seed, "Random seed (init, batches, dropout)")
      ->check(kUnsigned)
      ->capture_default_str();
  cmd->add_option("--threads", a->threads, "Worker threads (0 = all cores)");
  cmd->callback([a] { run_train(*a); });
}

}  // namespace pf::cli
