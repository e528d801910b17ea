// `postformer train`: trains a fresh model (or resumes a checkpoint) on a text file.
#include <climits>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "apps/commands.h"
#include "apps/model_flags.h"
#include "apps/train_flags.h"
#include "base/checks.h"
#include "base/error.h"
#include "base/threads.h"
#include "data/corpus.h"
#include "io/checkpoint.h"
#include "io/config_json.h"
#include "io/run_dir.h"
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
  double dropout = 0.0;  // checked as a double, then narrowed into opt.dropout
  TrainArgs() { opt.steps = kStepsNotGiven; }  // then 1000, or the resumed run's own total
};

namespace fs = std::filesystem;

// An absolute, normalised path without a trailing separator ("run/step-5/" -> ".../run/step-5").
std::string normalized(const std::string& p) {
  fs::path n = fs::absolute(p).lexically_normal();
  if (!n.has_filename() && n.has_parent_path()) n = n.parent_path();
  return n.string();
}

void run_train(TrainArgs& a) {
  set_num_threads(a.threads);
  std::unique_ptr<LanguageModel> model;
  PF_CHECK(a.resume.empty() || a.init_from.empty(), "give at most one of --resume and --init-from");
  const bool steps_given = a.opt.steps != kStepsNotGiven;
  PF_CHECK(!steps_given || a.opt.steps >= 1, "--steps ", a.opt.steps, " is outside [1, 2^40]");
  check_range("--val-fraction", a.val_fraction, 0.0, 1.0, true, true);
  check_range("--dropout", a.dropout, 0.0, 1.0, false, true);
  a.opt.dropout = static_cast<float>(a.dropout);
  const bool out_given = !a.opt.out_dir.empty();
  if (!a.resume.empty()) {
    a.resume = normalized(a.resume);
    // --resume RUN/step-N continues the run in RUN; only its latest checkpoint may be named,
    // since starting the run removes every other one.
    const fs::path parent = fs::path(a.resume).parent_path();
    if (fs::exists(parent / ".postformer-run") && fs::exists(fs::path(a.resume) / "config.json")) {
      const std::string latest = resolve_checkpoint_dir(parent.string());
      PF_CHECK(normalized(latest) == a.resume, "--resume ", a.resume,
               " is not the latest checkpoint of its run (that is ", latest, "); resume from ",
               parent.string());
      a.resume = parent.string();
    }
  }
  if (!out_given) a.opt.out_dir = a.resume.empty() ? "runs/default" : a.resume;
  const bool same_dir = !a.resume.empty() && normalized(a.opt.out_dir) == a.resume;
  if (!a.init_from.empty())
    PF_CHECK(fs::weakly_canonical(a.opt.out_dir) != fs::weakly_canonical(a.init_from),
             "--out must differ from --init-from, so the original model stays intact");
  std::string source_dir;  // where the model (and its tokenizer) come from, if anywhere
  int64_t resumed_step = 0;
  if (!a.resume.empty()) {
    source_dir = resolve_checkpoint_dir(a.resume);
    // Resume keeps the run's own hyper-parameters; only length, time and output may change.
    const TrainerState st =
        read_trainer_state((fs::path(source_dir) / "trainer_state.json").string());
    TrainOptions saved = st.options;
    if (steps_given) saved.steps = a.opt.steps;  // else the run's own schedule length
    PF_CHECK(st.step <= saved.steps, "--steps ", saved.steps, " is below the step ", st.step,
             " the run has reached; give a larger total");
    saved.time_limit = a.opt.time_limit;
    saved.out_dir = a.opt.out_dir;
    saved.log_every = a.opt.log_every;
    saved.save_every = a.opt.save_every;
    saved.quiet = a.opt.quiet;
    saved.eval_every = a.opt.eval_every;
    a.opt = saved;
    resumed_step = st.step;
  }
  if (a.opt.steps == kStepsNotGiven) a.opt.steps = 1000;
  a.opt.validate();
  // Refused before anything is loaded or trained: the run must be able to save at the end.
  RunDir::check_out_dir(a.opt.out_dir, a.overwrite, same_dir);
  auto run_dir = std::make_unique<RunDir>(a.opt.out_dir);
  // Again under the lock: another run may have saved there since the first look.
  RunDir::check_out_dir(a.opt.out_dir, a.overwrite, same_dir);
  if (same_dir)
    PF_CHECK(resolve_checkpoint_dir(a.resume) == source_dir, a.resume,
             " changed while this run started (another run saved there); start it again");
  if (!a.resume.empty()) {
    model = load_model(source_dir);  // every weight checked against the config
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
  Trainer trainer(*model, corpus, a.opt, std::move(run_dir));
  if (!a.resume.empty()) {
    trainer.resume_from(source_dir);
    PF_CHECK(trainer.step() == resumed_step, source_dir, " changed while it was read");
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
  add_train_flags(*cmd, a->opt, a->dropout);
  cmd->add_option("--val-fraction", a->val_fraction, "Held-out fraction of the data")
      ->capture_default_str();
  cmd->add_option("--seed", a->opt.seed, "Random seed (init, batches, dropout)")
      ->check(kUnsigned)
      ->capture_default_str();
  cmd->add_option("--threads", a->threads, "Worker threads (0 = all cores)");
  cmd->callback([a] { run_train(*a); });
}

}  // namespace pf::cli
