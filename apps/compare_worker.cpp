#include "apps/compare_worker.h"

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>

#include "base/error.h"
#include "base/memory_stats.h"
#include "base/threads.h"
#include "data/corpus.h"
#include "data/tokenizer.h"
#include "infer/speed_probe.h"
#include "io/atomic_file.h"
#include "io/config_json.h"
#include "io/run_dir.h"
#include "models/lm.h"
#include "train/metrics_log.h"
#include "train/trainer.h"

namespace pf::cli {

namespace fs = std::filesystem;

namespace {

TrainOptions train_options(const CompareSettings& s, int64_t steps) {
  TrainOptions o;
  o.batch = s.batch;
  o.seq = s.seq;
  o.steps = steps;
  o.lr = s.lr;
  o.warmup = std::min(s.warmup, std::max<int64_t>(1, steps / 10));
  o.seed = s.seed;
  o.eval_batches = s.eval_batches;
  o.eval_every = std::max<int64_t>(1, steps / std::max<int64_t>(1, s.evals));
  o.log_every = std::max<int64_t>(1, std::min<int64_t>(25, steps / 20));
  o.save_every = std::max<int64_t>(1, steps / 4);  // an interrupted compare loses < 1/4 of a run
  return o;
}

Corpus load_corpus(const CompareSettings& s) {
  ByteTokenizer tok;
  return Corpus::from_text_file(s.data, tok, s.val_fraction);
}

}  // namespace

double calibrate_step_seconds(const CompareSettings& s, const SizedArch& arch) {
  set_num_threads(s.threads);
  const Corpus corpus = load_corpus(s);
  auto model = create_model(arch.config, s.seed);
  TrainOptions o = train_options(s, 2);
  o.eval_every = 0;
  o.eval_batches = 1;
  o.save_every = 0;
  o.quiet = true;
  o.warmup = 1;
  Trainer warm(*model, corpus, [&] {
    TrainOptions w = o;
    w.steps = 1;
    return w;
  }());
  warm.run();  // first-touch allocations and kernel set-up stay out of the timing
  // The fastest of three short runs: a hiccup of a shared machine is not the arch's speed.
  double best = 1e300;
  for (int rep = 0; rep < 3; ++rep) {
    Trainer t(*model, corpus, o);
    best = std::min(best, t.run().seconds / o.steps);
  }
  return best;
}

nlohmann::json train_and_measure(const CompareSettings& s, const SizedArch& arch, int64_t steps,
                                 const std::string& run_dir) {
  set_num_threads(s.threads);
  const Corpus corpus = load_corpus(s);
  const bool resuming = latest_checkpoint_step(run_dir) >= 0;
  RunDir::check_out_dir(run_dir, /*overwrite=*/true, resuming);
  auto dir = std::make_unique<RunDir>(run_dir);
  auto model = create_model(arch.config, s.seed);
  TrainOptions o = train_options(s, steps);
  o.out_dir = run_dir;
  reset_peak_rss();
  Trainer trainer(*model, corpus, o, std::move(dir));
  if (resuming) {
    trainer.resume_from(run_dir);
    std::printf("%s: resumed at step %ld of %ld\n", arch.label.c_str(),
                static_cast<long>(trainer.step()), static_cast<long>(steps));
  }
  const TrainResult r = trainer.run();
  double peak_mib = peak_rss_kib() / 1024.0;
  double tokens_per_s = r.tokens_per_sec;
  // A resumed run reports the speed of its last segment and the peak of all of them.
  const std::vector<nlohmann::json> rows = read_metrics(run_dir);
  for (const nlohmann::json& row : rows)
    if (row.contains("peak_mem_mib") && row["peak_mem_mib"].is_number())
      peak_mib = std::max(peak_mib, row["peak_mem_mib"].get<double>());
  if (r.steps_done == 0 && !rows.empty() && rows.back()["tokens_per_s"].is_number())
    tokens_per_s = rows.back()["tokens_per_s"].get<double>();
  // The reported figure reads the whole validation split, whatever the batch size.
  const double val_bpb = trainer.evaluate_bpb(int64_t{1} << 40);
  PF_CHECK(std::isfinite(val_bpb), arch.label, ": validation bits per byte is ", val_bpb);

  // Prefill and decode read real validation text.
  const Batch text =
      corpus.val_batch(1, std::min<int64_t>(s.prefill_tokens, corpus.val_tokens() - 2), 0);
  const double prefill = prefill_tokens_per_s(*model, text.inputs, 2);
  nlohmann::json decode = nlohmann::json::array();
  const std::vector<int32_t> prefix(
      text.inputs.begin(), text.inputs.begin() + std::min<size_t>(128, text.inputs.size()));
  for (int64_t c : s.contexts) {
    const DecodeProbe d = decode_probe(*model, prefix, c, s.decode_steps);
    decode.push_back({{"context", c},
                      {"ms_per_token", d.ms_per_token},
                      {"state_mib", d.state_bytes / 1048576.0}});
  }
  // Tokens with a loss, as the trainer counts them (Perceiver AR: its latents).
  const int64_t tokens = steps * s.batch * model->loss_rows(s.seq);
  return {{"arch", arch.label},
          {"params", arch.params},
          {"config", arch.config},
          {"summary", arch.summary},
          {"train",
           {{"steps", steps},
            {"tokens", tokens},
            {"seconds", r.seconds},
            {"tokens_per_s", tokens_per_s},
            {"peak_mem_mib", peak_mib}}},
          {"val_bpb", val_bpb},
          {"prefill_tokens_per_s", prefill},
          {"decode", decode}};
}

bool run_in_child(const std::function<nlohmann::json()>& work, const std::string& result_path) {
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  PF_CHECK(pid >= 0, "cannot fork a worker process");
  if (pid == 0) {
    // A worker never outlives its compare: killed with it, it cannot hold a run's lock.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    int rc = 0;
    try {
      const nlohmann::json j = work();
      write_file_atomic(result_path, j.dump(2) + "\n");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      rc = 1;
    }
    std::fflush(stdout);
    std::fflush(stderr);
    ::_exit(rc);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) {
    std::fprintf(stderr, "error: the worker process was killed by signal %d\n", WTERMSIG(status));
    return false;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace pf::cli
