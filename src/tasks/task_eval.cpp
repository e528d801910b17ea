#include "tasks/task_eval.h"

#include <algorithm>
#include <cstdio>

#include "base/error.h"

namespace pf {

TaskScore task_accuracy(LanguageModel& model, const SyntheticTask& task, int64_t T,
                        int64_t sequences) {
  PF_CHECK(T <= model.max_context(), "task length ", T, " exceeds the model's context ",
           model.max_context(), " (train with a larger --context)");
  PF_CHECK(model.vocab_size() >= task.vocab_size(), "the model's vocabulary (", model.vocab_size(),
           ") is smaller than the task's (", task.vocab_size(), ")");
  task.check_fits(1, T);
  NoGradScope no_grad;
  TaskScore s;
  s.length = T;
  // About 16k tokens a forward: long sequences go one at a time.
  const int64_t B = std::clamp<int64_t>((int64_t{1} << 14) / T, 1, sequences);
  const int64_t V = model.vocab_size();
  for (int64_t done = 0, index = 0; done < sequences; done += B, ++index) {
    const Batch b = task.val_batch(B, T, index);
    // A model with logits on the last positions only (Perceiver AR's latents) is scored on
    // the answers there, as it was trained.
    const int64_t rows = model.loss_rows(T);
    const std::vector<int32_t> targets = tail_targets(b, rows);
    const Tensor logits =
        model.forward(b.inputs, b.B, b.T, ForwardOptions{}).value();  // (B*rows, V)
    const float* lg = logits.data();
    for (int64_t r = 0; r < B * rows; ++r) {
      if (targets[r] < 0) continue;
      const float* row = lg + r * V;
      const int64_t best = std::max_element(row, row + V) - row;
      ++s.answers;
      s.correct += best == targets[r];
    }
  }
  return s;
}

nlohmann::json TaskResultRow::to_json() const {
  nlohmann::json j = {
      {"task", task}, {"length", length}, {"accuracy", accuracy}, {"answers", answers}};
  if (pairs > 0) j["pairs"] = pairs;
  return j;
}

std::vector<TaskResultRow> score_task(LanguageModel& model, const TaskOptions& opt,
                                      const std::vector<int64_t>& lengths, int64_t sequences,
                                      bool print) {
  std::vector<std::vector<int64_t>> pair_sets = {opt.pairs};
  if (opt.name == "mqar" && opt.pairs.size() > 1) {
    pair_sets.clear();
    for (int64_t p : opt.pairs) pair_sets.push_back({p});
  }
  std::vector<TaskResultRow> rows;
  for (const std::vector<int64_t>& ps : pair_sets) {
    TaskOptions o = opt;
    o.pairs = ps;
    const std::unique_ptr<SyntheticTask> task = make_task(o);
    for (int64_t L : lengths) {
      const TaskScore s = task_accuracy(model, *task, L, sequences);
      TaskResultRow r{o.name, L, o.name == "mqar" ? (ps.empty() ? L / 4 : ps[0]) : 0, s.answers,
                      s.accuracy()};
      if (print) {
        std::printf("%s length %6ld", r.task.c_str(), static_cast<long>(L));
        if (r.pairs > 0) std::printf(" pairs %3ld", static_cast<long>(r.pairs));
        std::printf(": accuracy %6.2f%% (%ld answers)\n", 100.0 * r.accuracy,
                    static_cast<long>(r.answers));
        std::fflush(stdout);
      }
      rows.push_back(r);
    }
  }
  return rows;
}

}  // namespace pf
