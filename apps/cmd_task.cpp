// `postformer task train | eval`: synthetic capability tasks (selective copying, induction
// heads, MQAR), generated on the fly, scored by accuracy on the answer positions.
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
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "io/config_json.h"
#include "io/run_dir.h"
#include "tasks/task_eval.h"
#include "train/trainer.h"

namespace pf::cli {

namespace {

namespace fs = std::filesystem;

struct TaskFlags {
  std::string name;
  int64_t vocab = 0, data_tokens = 16;
  std::vector<int64_t> pairs;
  double power_a = 0.01;
  void add_to(CLI::App& cmd, bool required) {
    auto* t = cmd.add_option("--task", name, "selective_copy | induction | mqar");
    if (required) t->required();
    cmd.add_option("--task-vocab", vocab,
                   "Task vocabulary (0 = the task's: 16, 16, 8192 for mqar)");
    cmd.add_option("--data-tokens", data_tokens, "selective_copy: tokens to copy")
        ->capture_default_str();
    cmd.add_option("--pairs", pairs,
                   "mqar: key-value pair counts (training draws one per sequence; eval scores "
                   "each); default seq/4")
        ->delimiter(',');
    cmd.add_option("--power-a", power_a, "mqar: query gap power law p(g) ~ g^(a-1)")
        ->capture_default_str();
  }
  TaskOptions options() const { return {name, vocab, data_tokens, pairs, power_a}; }
};

struct TaskTrainArgs {
  ModelFlags model;
  TaskFlags task;
  TrainOptions opt;
  std::vector<int64_t> eval_lengths;
  int64_t eval_sequences = 256;
  std::string init_from;  // continue from an earlier task run (a length curriculum)
  int threads = 0;
  bool overwrite = false;
  double dropout = 0.0;
};

void run_task_train(TaskTrainArgs& a) {
  set_num_threads(a.threads);
  std::unique_ptr<SyntheticTask> task = make_task(a.task.options());
  check_range("--dropout", a.dropout, 0.0, 1.0, false, true);
  a.opt.dropout = static_cast<float>(a.dropout);
  check_range("--eval-sequences", a.eval_sequences, 1, 1 << 20);
  if (a.opt.out_dir.empty()) a.opt.out_dir = "runs/task-" + task->options().name;
  a.opt.validate();
  task->check_fits(a.opt.batch, a.opt.seq);
  // The model reads the task's tokens: its vocabulary is the task's.
  a.model.vocab = task->vocab_size();
  int64_t longest = a.opt.seq;
  for (int64_t L : a.eval_lengths) longest = std::max(longest, L);
  a.model.context = std::max(a.model.context, longest);
  RunDir::check_out_dir(a.opt.out_dir, a.overwrite, false);
  auto run_dir = std::make_unique<RunDir>(a.opt.out_dir);
  RunDir::check_out_dir(a.opt.out_dir, a.overwrite, false);
  std::unique_ptr<LanguageModel> model;
  if (!a.init_from.empty()) {
    PF_CHECK(fs::weakly_canonical(a.opt.out_dir) != fs::weakly_canonical(a.init_from),
             "--out must differ from --init-from, so the original model stays intact");
    model = load_model(a.init_from);
    PF_CHECK(model->vocab_size() >= task->vocab_size(), "--init-from ", a.init_from,
             ": its vocabulary (", model->vocab_size(), ") is smaller than the task's (",
             task->vocab_size(), ")");
    PF_CHECK(model->max_context() >= longest, "--init-from ", a.init_from, ": its context (",
             model->max_context(), ") is shorter than ", longest);
  } else {
    try {
      model = create_model(a.model.config(), a.opt.seed);
    } catch (const Error& e) {
      fail("the model shape flags (--arch, --d-model, ...) describe no valid model: ", e.what());
    }
  }
  std::printf("task %s: model %s, %.3fM parameters, train at %ld tokens, %d threads\n",
              task->options().name.c_str(), model->arch().c_str(), model->num_params() / 1e6,
              static_cast<long>(a.opt.seq), num_threads());
  Trainer trainer(*model, *task, a.opt, std::move(run_dir));
  trainer.add_checkpoint_file("task.json", task->options().to_json().dump(2) + "\n");
  const TrainResult r = trainer.run();
  std::printf("done: %ld steps in %.1f s; validation %.4f bits per answer token\n",
              static_cast<long>(r.steps_done), r.seconds, r.val_bpb);
  std::vector<int64_t> lengths = a.eval_lengths;
  if (lengths.empty()) lengths.push_back(a.opt.seq);
  score_task(*model, task->options(), lengths, a.eval_sequences, /*print=*/true);
  std::printf("checkpoint: %s\n", a.opt.out_dir.c_str());
}

struct TaskEvalArgs {
  std::string model_dir, json_out;
  TaskFlags task;
  std::vector<int64_t> lengths;
  int64_t sequences = 256;
  int threads = 0;
};

void run_task_eval(const TaskEvalArgs& a) {
  set_num_threads(a.threads);
  check_range("--sequences", a.sequences, 1, 1 << 20);
  PF_CHECK(!a.lengths.empty(), "give --lengths, e.g. --lengths 256,1024,4096");
  auto model = load_model(a.model_dir);
  const std::string dir = resolve_checkpoint_dir(a.model_dir);
  // The task the model was trained on, unless flags name another.
  TaskOptions opt = a.task.options();
  const fs::path saved = fs::path(dir) / "task.json";
  if (fs::exists(saved)) {
    TaskOptions trained;
    try {
      trained = TaskOptions::from_json(read_json_file(saved.string()));
    } catch (const Error& e) {
      fail(saved.string(), ": ", e.what());
    }
    if (opt.name.empty()) opt.name = trained.name;
    if (opt.name == trained.name) {
      if (opt.vocab == 0) opt.vocab = trained.vocab;
      if (opt.pairs.empty()) opt.pairs = trained.pairs;
    }
  }
  PF_CHECK(!opt.name.empty(), dir, " holds no task.json; name the task with --task");
  const std::vector<TaskResultRow> rows = score_task(*model, opt, a.lengths, a.sequences, true);
  if (!a.json_out.empty()) {
    nlohmann::json j = {
        {"model", dir}, {"task", opt.to_json()}, {"results", nlohmann::json::array()}};
    for (const TaskResultRow& r : rows) j["results"].push_back(r.to_json());
    write_file_atomic(a.json_out, j.dump(2) + "\n");
    std::printf("wrote %s\n", a.json_out.c_str());
  }
}

}  // namespace

void add_task(CLI::App& app) {
  auto* cmd = app.add_subcommand("task", "Synthetic capability tasks: train a model, score it");
  cmd->require_subcommand(1);

  auto t = std::make_shared<TaskTrainArgs>();
  t->opt.steps = 1000;
  t->opt.batch = 32;
  t->opt.seq = 256;
  t->opt.lr = 1e-3;
  t->opt.warmup = 50;
  t->opt.eval_every = 100;
  t->opt.eval_batches = 4;
  t->opt.log_every = 50;
  t->model.d_model = 64;
  t->model.layers = 2;
  t->model.heads = 2;
  auto* train = cmd->add_subcommand("train", "Train a fresh model on a synthetic task");
  t->task.add_to(*train, true);
  t->model.add_to(*train);
  train->add_option("--steps", t->opt.steps, "Optimizer steps")->capture_default_str();
  add_train_flags(*train, t->opt, t->dropout);
  train->add_option("--out", t->opt.out_dir, "Run directory (default runs/task-NAME)");
  train->add_option("--init-from", t->init_from,
                    "Start from the model of an earlier task run (e.g. a shorter --seq)");
  train->add_flag("--overwrite", t->overwrite, "Replace the checkpoint of an earlier run in --out");
  train
      ->add_option("--eval-lengths", t->eval_lengths,
                   "Lengths to score accuracy at after training (default --seq)")
      ->delimiter(',');
  train->add_option("--eval-sequences", t->eval_sequences, "Sequences scored per length")
      ->capture_default_str();
  train->add_option("--seed", t->opt.seed, "Random seed (init, sequences)")
      ->check(kUnsigned)
      ->capture_default_str();
  train->add_option("--threads", t->threads, "Worker threads (0 = all cores)");
  train->callback([t] { run_task_train(*t); });

  auto e = std::make_shared<TaskEvalArgs>();
  auto* eval = cmd->add_subcommand("eval", "Score a model's accuracy on a task at given lengths");
  eval->add_option("--model", e->model_dir, "Model directory (a task run)")->required();
  e->task.add_to(*eval, false);
  eval->add_option("--lengths", e->lengths, "Sequence lengths, e.g. 256,1024,4096,16384")
      ->delimiter(',');
  eval->add_option("--sequences", e->sequences, "Sequences scored per length")
      ->capture_default_str();
  eval->add_option("--json", e->json_out, "Also write the scores to this JSON file");
  eval->add_option("--threads", e->threads, "Worker threads (0 = all cores)");
  eval->callback([e] { run_task_eval(*e); });
}

}  // namespace pf::cli
