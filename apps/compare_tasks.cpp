#include "apps/compare_tasks.h"

#include <cstdio>

#include "apps/compare_sizing.h"
#include "apps/model_flags.h"
#include "base/checks.h"
#include "base/error.h"
#include "base/threads.h"
#include "models/lm.h"
#include "tasks/task_eval.h"
#include "train/trainer.h"

namespace pf::cli {

void add_task_suite_flags(CLI::App& cmd, TaskSuiteSettings& t) {
  cmd.add_option("--task-list", t.tasks, "Tasks of --tasks")->delimiter(',');
  cmd.add_option("--task-steps", t.steps, "Training steps per task model")->capture_default_str();
  cmd.add_option("--task-width", t.width,
                 "Width of the task models' Transformer; the others match its parameters")
      ->capture_default_str();
  cmd.add_option("--task-length", t.train_length, "Training length of copying and induction")
      ->capture_default_str();
  cmd.add_option("--task-lengths", t.lengths, "Lengths induction is scored at")->delimiter(',');
  cmd.add_option("--mqar-length", t.mqar_length, "MQAR sequence length")->capture_default_str();
  cmd.add_option("--mqar-vocab", t.mqar_vocab, "MQAR vocabulary")->capture_default_str();
  cmd.add_option("--mqar-pairs", t.mqar_pairs, "MQAR key-value pair counts")->delimiter(',');
  cmd.add_option("--task-sequences", t.sequences, "Sequences scored per length")
      ->capture_default_str();
}

void validate_task_suite(const TaskSuiteSettings& t) {
  for (const std::string& name : t.tasks) make_task({name});  // unknown names fail here
  check_range("--task-steps", t.steps, 1, int64_t{1} << 30);
  check_range("--task-width", t.width, 8, 4096);
  check_range("--task-length", t.train_length, 32, 1 << 20);
  check_range("--mqar-length", t.mqar_length, 8, 1 << 20);
  check_range("--task-sequences", t.sequences, 1, 1 << 20);
  PF_CHECK(!t.lengths.empty() && !t.mqar_pairs.empty(),
           "--task-lengths and --mqar-pairs need values");
  for (int64_t L : t.lengths) check_range("--task-lengths", L, 4, 1 << 22);
  for (int64_t p : t.mqar_pairs)
    PF_CHECK(p >= 1 && 4 * p <= t.mqar_length, "--mqar-pairs ", p, " does not fit --mqar-length ",
             t.mqar_length, " (needs 4 x pairs <= length)");
}

nlohmann::json run_task_suite(const TaskSuiteSettings& t, const std::string& label,
                              const CompareSettings& s) {
  set_num_threads(s.threads);
  nlohmann::json out = nlohmann::json::object();
  for (const std::string& name : t.tasks) {
    TaskOptions o{name};
    int64_t train_len = t.train_length;
    std::vector<int64_t> lengths = {t.train_length};
    if (name == "mqar") {
      o.vocab = t.mqar_vocab;
      o.pairs = t.mqar_pairs;
      train_len = t.mqar_length;
      lengths = {t.mqar_length};
    } else if (name == "induction") {
      lengths = t.lengths;
    }
    const auto task = make_task(o);
    int64_t longest = train_len;
    for (int64_t L : lengths) longest = std::max(longest, L);
    // Every arch's task model matches the parameters of a Transformer of --task-width.
    ModelFlags ref;
    ref.d_model = t.width;
    ref.layers = t.depth;
    ref.heads = 2;
    ref.vocab = task->vocab_size();
    ref.context = longest;
    const int64_t budget = config_param_count(ref.config());
    // Perceiver AR's window covers the longest length scored; its latents, a quarter of the
    // training length, hold the answers it is trained on.
    const SizedArch arch = size_arch(label, budget, t.depth, task->vocab_size(), longest, longest,
                                     std::max<int64_t>(1, train_len / 4));
    auto model = create_model(arch.config, s.seed);
    std::printf("%s on %s: %.3fM parameters (%s), %ld steps at length %ld\n", label.c_str(),
                name.c_str(), arch.params / 1e6, arch.summary.c_str(), static_cast<long>(t.steps),
                static_cast<long>(train_len));
    // Induction has a phase transition that takes thousands of steps at 256 tokens from
    // scratch; a short curriculum (3/4 of the steps at 64 tokens, then the rest at the
    // training length) reaches it in seconds, as bench/tasks_induction.sh does.
    std::vector<std::pair<int64_t, int64_t>> stages = {{train_len, t.steps}};  // (length, steps)
    if (name == "induction" && train_len > 64)
      stages = {{64, t.steps * 3 / 4}, {train_len, t.steps - t.steps * 3 / 4}};
    for (size_t k = 0; k < stages.size(); ++k) {
      TrainOptions opt;
      opt.steps = std::max<int64_t>(1, stages[k].second);
      opt.batch = stages[k].first < train_len ? 2 * t.batch : t.batch;
      opt.seq = stages[k].first;
      opt.lr = k == 0 ? t.lr : t.lr / 3;
      opt.warmup = std::min<int64_t>(k == 0 ? 100 : 20, opt.steps / 10);
      opt.seed = s.seed + k;
      opt.eval_every = 0;
      opt.eval_batches = 2;
      opt.log_every = std::max<int64_t>(1, opt.steps / 4);
      Trainer trainer(*model, *task, opt);
      trainer.run();
    }
    nlohmann::json rows = nlohmann::json::array();
    for (const TaskResultRow& r : score_task(*model, task->options(), lengths, t.sequences, true))
      rows.push_back(r.to_json());
    out[name] = rows;
  }
  return out;
}

}  // namespace pf::cli
