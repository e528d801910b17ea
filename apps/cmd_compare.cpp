// `postformer compare`: trains every chosen architecture at matched parameters on the same
// batches, measures quality and speed, and writes a report directory:
//   OUT/.postformer-compare   marker: this directory is a compare's (and may be resumed)
//   OUT/plan.json             settings, configs and the step count every arch trains for
//   OUT/runs/<arch>/          each arch's training run (checkpoints, metrics.jsonl)
//   OUT/results/<arch>.json   each arch's measurements, once it is done
//   OUT/results.json, report.md, report.html, *.png
#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>

#include "apps/commands.h"
#include "apps/compare_sizing.h"
#include "apps/compare_tasks.h"
#include "apps/compare_worker.h"
#include "base/checks.h"
#include "base/error.h"
#include "base/threads.h"
#include "base/timer.h"
#include "data/corpus.h"
#include "data/tokenizer.h"
#include "io/atomic_file.h"
#include "io/config_json.h"
#include "report/compare_report.h"
#include "train/metrics_log.h"

namespace pf::cli {

namespace {

namespace fs = std::filesystem;
constexpr const char* kMarker = ".postformer-compare";
constexpr int64_t kMinSteps = 150;  // below this a time budget trades batch size for steps

struct CompareArgs {
  CompareSettings s;
  std::string out = "runs/compare", against, params_text = "2M";
  std::vector<std::string> archs;
  int64_t depth = 4, tokens = 0, steps = 0;
  double minutes = 10;
  bool overwrite = false, tasks = false, batch_given = false;
  TaskSuiteSettings task;
};

// "2M", "500k", "1.5e6" -> parameters.
int64_t parse_count(const std::string& flag, const std::string& text) {
  double mult = 1;
  std::string num = text;
  if (!num.empty() && (num.back() == 'M' || num.back() == 'm'))
    mult = 1e6, num.pop_back();
  else if (!num.empty() && (num.back() == 'K' || num.back() == 'k'))
    mult = 1e3, num.pop_back();
  double v = 0;
  PF_CHECK(parse_whole_double(num, &v) && std::isfinite(v), flag, " '", text,
           "' is not a number (e.g. 2M, 500k, 1500000)");
  const double n = v * mult;
  PF_CHECK(n >= 1e4 && n <= 1e10, flag, " ", text, " is outside [10k, 10G]");
  return static_cast<int64_t>(n);
}

// The settings that decide what a compare computes: a resumed compare must match them.
nlohmann::json plan_key(const CompareArgs& a, int64_t params, int64_t data_bytes) {
  return {{"data", fs::absolute(a.s.data).lexically_normal().string()},
          {"data_bytes", data_bytes},
          {"params", params},
          {"depth", a.depth},
          {"archs", a.archs},
          {"batch", a.s.batch},
          {"seq", a.s.seq},
          {"latents", a.s.latents},
          {"lr", a.s.lr},
          {"seed", a.s.seed},
          {"val_fraction", a.s.val_fraction},
          {"minutes", a.minutes},
          {"tokens", a.tokens},
          {"steps", a.steps},
          {"contexts", a.s.contexts},
          {"tasks", a.tasks}};
}

// --out must be new, empty, or an earlier compare's directory.
void check_compare_dir(const std::string& out) {
  std::error_code ec;
  if (!fs::exists(out, ec)) return;
  PF_CHECK(fs::is_directory(out, ec), "--out ", out, " exists and is not a directory");
  if (fs::exists(fs::path(out) / kMarker, ec)) return;
  PF_CHECK(fs::is_empty(out, ec), "--out ", out,
           " is not empty and is not a compare directory; give a new or empty directory. "
           "Nothing in it was changed.");
}

std::string cpu_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line, name = "unknown CPU";
  bool avx512 = false, avx2 = false;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0 && name == "unknown CPU")
      name = line.substr(line.find(':') + 2);
    if (line.rfind("flags", 0) == 0) {
      avx512 = line.find(" avx512f") != std::string::npos;
      avx2 = line.find(" avx2") != std::string::npos;
      break;
    }
  }
  return name + (avx512 ? " (AVX-512)" : avx2 ? " (AVX2)" : "");
}

std::string now_iso() {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string mmss(double s) {
  char buf[32];
  const long t = static_cast<long>(s + 0.5);
  std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  return buf;
}

// The curve of a run: one point per metrics row.
nlohmann::json read_curve(const std::string& run_dir) {
  nlohmann::json curve = nlohmann::json::array();
  std::error_code ec;
  if (!fs::exists(fs::path(run_dir) / kMetricsFile, ec)) return curve;
  for (const nlohmann::json& row : read_metrics(run_dir))
    curve.push_back({{"step", row.value("step", 0)},
                     {"tokens", row.value("tokens", 0)},
                     {"loss", row.value("loss", 0.0)},
                     {"val_bpb", row.contains("val_bpb") ? row["val_bpb"] : nlohmann::json()}});
  return curve;
}

void run_compare(CompareArgs& a) {
  Timer wall;
  const int64_t params = parse_count("--params", a.params_text);
  if (a.archs.empty()) a.archs = compare_arch_labels();
  check_range("--depth", a.depth, 1, 256);
  check_range("--minutes", a.minutes, 0.0, 1e6, /*open_lo=*/true);
  check_range("--tokens", a.tokens, 0, int64_t{1} << 40);
  check_range("--steps", a.steps, 0, int64_t{1} << 40);
  check_range("--batch", a.s.batch, 1, 1 << 16);
  check_range("--seq", a.s.seq, 2, 1 << 20);
  check_range("--latents", a.s.latents, 0, a.s.seq);
  check_range("--lr", a.s.lr, 0.0, 10.0, true);
  check_range("--val-fraction", a.s.val_fraction, 0.0, 1.0, true, true);
  check_range("--eval-batches", a.s.eval_batches, 1, 1 << 20);
  check_range("--decode-steps", a.s.decode_steps, 1, 1 << 20);
  check_range("--prefill-tokens", a.s.prefill_tokens, 1, 1 << 24);
  PF_CHECK(!a.s.contexts.empty(), "--contexts needs at least one length");
  for (int64_t c : a.s.contexts) check_range("--contexts", c, 1, 1 << 22);
  PF_CHECK(a.tokens == 0 || a.steps == 0, "give at most one of --tokens and --steps");
  if (a.tasks) validate_task_suite(a.task);
  nlohmann::json old;
  if (!a.against.empty()) {
    old = read_json_file(a.against);  // read before anything runs: a typo fails at once
    PF_CHECK(old.is_object() && old.contains("archs"), a.against, " is not a compare results.json");
  }
  set_num_threads(a.s.threads);

  // The corpus is read once here for its sizes; every worker reads it again itself.
  const ByteTokenizer tok;
  const Corpus corpus = Corpus::from_text_file(a.s.data, tok, a.s.val_fraction);
  corpus.check_fits(a.s.batch, a.s.seq);
  const int64_t data_bytes = static_cast<int64_t>(fs::file_size(a.s.data));

  int64_t max_ctx = a.s.seq;
  for (int64_t c : a.s.contexts) max_ctx = std::max(max_ctx, c);
  std::vector<SizedArch> archs;
  for (const std::string& label : a.archs)
    archs.push_back(size_arch(label, params, a.depth, 256, max_ctx + a.s.decode_steps + 8, a.s.seq,
                              a.s.latents));
  std::printf("compare: %zu architectures at %.2fM parameters (within 5%%) on %s\n", archs.size(),
              params / 1e6, a.s.data.c_str());
  for (const SizedArch& s : archs)
    std::printf("  %-12s %7.3fM  %+5.1f%%  %s\n", s.label.c_str(), s.params / 1e6,
                100.0 * (s.params - params) / params, s.summary.c_str());

  check_compare_dir(a.out);
  fs::create_directories(fs::path(a.out) / "results");
  fs::create_directories(fs::path(a.out) / "runs");
  write_file_atomic((fs::path(a.out) / kMarker).string(), "");
  const std::string plan_path = (fs::path(a.out) / "plan.json").string();
  const nlohmann::json key = plan_key(a, params, data_bytes);
  nlohmann::json plan;
  if (fs::exists(plan_path)) {
    plan = read_json_file(plan_path);
    if (plan.value("key", nlohmann::json()) != key) {
      PF_CHECK(a.overwrite, "--out ", a.out,
               " holds a compare with other settings; pass --overwrite to replace it, or "
               "choose another --out");
      plan = nlohmann::json();
      for (const std::string& label : compare_arch_labels()) {
        fs::remove(fs::path(a.out) / "results" / (label + ".json"));
        fs::remove(fs::path(a.out) / "results" / (label + ".tasks.json"));
      }
    } else {
      std::printf("resuming the compare in %s (same settings)\n", a.out.c_str());
    }
  }
  if (plan.is_null()) {
    int64_t steps = a.steps;
    nlohmann::json sec = nlohmann::json::object();
    if (steps == 0 && a.tokens > 0) steps = std::max<int64_t>(1, a.tokens / (a.s.batch * a.s.seq));
    if (steps == 0) {
      // A time budget: every arch gets the same tokens, so the step count comes from the
      // sum of their measured step times (periodic validation included). The measuring
      // itself and the final measurements come out of the budget.
      Timer planning;
      for (;;) {
        std::printf("measuring training speed at batch %ld for the %.1f-minute budget...\n",
                    static_cast<long>(a.s.batch), a.minutes);
        double sum = 0;
        for (const SizedArch& s : archs) {
          const std::string tmp =
              (fs::path(a.out) / "results" / (s.label + ".speed.json")).string();
          PF_CHECK(run_in_child(
                       [&] {
                         return nlohmann::json{{"s", calibrate_step_seconds(a.s, s)}};
                       },
                       tmp),
                   s.label, ": the speed measurement failed (see above)");
          const double v = read_json_file(tmp)["s"].get<double>();
          fs::remove(tmp);
          sec[s.label] = v;
          sum += v * loss_step_factor(s, a.s.seq);
          std::printf("  %-12s %.3f s/step\n", s.label.c_str(), v);
        }
        // Validation: evals x eval_batches forwards, each about a third of a training step;
        // the final measurements of each arch: about 3% of the budget.
        const double eval_steps = a.s.evals * a.s.eval_batches / 3.0;
        const double budget = a.minutes * 60 * 0.97 - planning.seconds();
        steps = std::max<int64_t>(10, static_cast<int64_t>(budget / sum - eval_steps));
        // A slow CPU affords few steps: smaller batches of the same tokens learn more from
        // them early in training. Halve (down to 4) and measure again.
        if (a.batch_given || steps >= kMinSteps || a.s.batch < 8) break;
        a.s.batch /= 2;
      }
    }
    plan = {{"key", key}, {"steps", steps}, {"batch", a.s.batch}, {"step_seconds", sec}};
    write_file_atomic(plan_path, plan.dump(2) + "\n");
  }
  const int64_t steps = plan["steps"].get<int64_t>();
  a.s.batch = plan.value("batch", a.s.batch);
  std::printf("every architecture trains %ld steps of %ld x %ld tokens (%.2fM tokens)\n",
              static_cast<long>(steps), static_cast<long>(a.s.batch), static_cast<long>(a.s.seq),
              steps * a.s.batch * a.s.seq / 1e6);
  for (const SizedArch& s : archs)
    if (loss_step_factor(s, a.s.seq) > 1)
      std::printf("  (%s scores only its latents: %ld steps, the same tokens with a loss)\n",
                  s.label.c_str(), static_cast<long>(steps * loss_step_factor(s, a.s.seq)));

  int failures = 0;
  for (size_t i = 0; i < archs.size(); ++i) {
    const SizedArch& s = archs[i];
    const std::string result = (fs::path(a.out) / "results" / (s.label + ".json")).string();
    const std::string run_dir = (fs::path(a.out) / "runs" / s.label).string();
    double eta = 0;
    const nlohmann::json& sec = plan["step_seconds"];
    for (size_t j = i; j < archs.size(); ++j)
      if (sec.contains(archs[j].label))
        eta += sec[archs[j].label].get<double>() * steps * loss_step_factor(archs[j], a.s.seq);
    if (fs::exists(result)) {
      std::printf("[%zu/%zu] %s: done earlier\n", i + 1, archs.size(), s.label.c_str());
      continue;
    }
    const int64_t arch_steps = steps * loss_step_factor(s, a.s.seq);
    std::printf("\n[%zu/%zu] %s: %.3fM parameters, %ld steps%s\n", i + 1, archs.size(),
                s.label.c_str(), s.params / 1e6, static_cast<long>(arch_steps),
                eta > 0 ? (", compare ETA " + mmss(eta)).c_str() : "");
    if (!run_in_child([&] { return train_and_measure(a.s, s, arch_steps, run_dir); }, result)) {
      std::fprintf(stderr, "compare: %s failed; the others go on\n", s.label.c_str());
      ++failures;
    }
  }
  if (a.tasks) {
    for (size_t i = 0; i < archs.size(); ++i) {
      const std::string out =
          (fs::path(a.out) / "results" / (archs[i].label + ".tasks.json")).string();
      if (fs::exists(out)) continue;
      std::printf("\n[tasks %zu/%zu] %s\n", i + 1, archs.size(), archs[i].label.c_str());
      if (!run_in_child([&] { return run_task_suite(a.task, archs[i].label, a.s); }, out))
        ++failures;
    }
  }

  nlohmann::json results = {{"version", 1},
                            {"created", now_iso()},
                            {"cpu", cpu_name()},
                            {"threads", num_threads()},
                            {"corpus",
                             {{"path", a.s.data},
                              {"train_tokens", corpus.train_tokens()},
                              {"val_tokens", corpus.val_tokens()},
                              {"bytes_per_token", corpus.bytes_per_token()}}},
                            {"budget",
                             {{"params", params},
                              {"minutes", a.steps == 0 && a.tokens == 0 ? a.minutes : 0.0},
                              {"tokens", a.tokens},
                              {"tokens_per_arch", steps * a.s.batch * a.s.seq},
                              {"steps", steps},
                              {"batch", a.s.batch},
                              {"seq", a.s.seq}}},
                            {"contexts", a.s.contexts},
                            {"archs", nlohmann::json::array()}};
  for (const SizedArch& s : archs) {
    const fs::path result = fs::path(a.out) / "results" / (s.label + ".json");
    nlohmann::json entry;
    if (fs::exists(result)) {
      entry = read_json_file(result.string());
    } else {  // failed: reported with what is known
      entry = {{"arch", s.label},      {"params", s.params}, {"config", s.config},
               {"summary", s.summary}, {"val_bpb", nullptr}, {"decode", nlohmann::json::array()},
               {"failed", true}};
    }
    entry["curve"] = read_curve((fs::path(a.out) / "runs" / s.label).string());
    const fs::path tasks = fs::path(a.out) / "results" / (s.label + ".tasks.json");
    if (fs::exists(tasks)) entry["tasks"] = read_json_file(tasks.string());
    results["archs"].push_back(entry);
  }
  write_report(results, a.out);
  std::printf("\n%s\n", report_table(results).c_str());
  if (!old.is_null()) {
    std::printf("against %s:\n%s\n", a.against.c_str(), report_against(results, old).c_str());
  }
  std::printf("report: %s/report.md, %s/report.html (%s in all)\n", a.out.c_str(), a.out.c_str(),
              mmss(wall.seconds()).c_str());
  PF_CHECK(failures == 0, failures,
           " of the runs failed (messages above); the report holds the rest");
}

}  // namespace

void add_compare(CLI::App& app) {
  auto a = std::make_shared<CompareArgs>();
  a->s.data = "data/kjv.txt";
  a->s.contexts = {128, 1024, 4096, 16384};
  auto* cmd =
      app.add_subcommand("compare",
                         "Train every architecture at matched parameters on the same data; report "
                         "quality, speed, memory and (--tasks) recall");
  cmd->add_option("--data", a->s.data, "UTF-8 text to train and validate on")
      ->capture_default_str();
  cmd->add_option("--out", a->out, "Report directory (an interrupted compare resumes there)")
      ->capture_default_str();
  cmd->add_option("--archs", a->archs,
                  "Architectures (default all: transformer,mamba,mamba2,retnet,hybrid,"
                  "perceiver-ar)")
      ->delimiter(',');
  cmd->add_option("--params", a->params_text, "Parameter budget per model (e.g. 2M, 500k)")
      ->capture_default_str();
  cmd->add_option("--depth", a->depth,
                  "Attention/retention layers (Mamba-style stacks get twice as many)")
      ->capture_default_str();
  cmd->add_option("--minutes", a->minutes,
                  "Training budget in minutes, split so every arch sees the same tokens")
      ->capture_default_str();
  cmd->add_option("--tokens", a->tokens, "Training tokens per arch instead of --minutes");
  cmd->add_option("--steps", a->steps, "Training steps per arch instead of --minutes");
  cmd->add_option("--batch", a->s.batch,
                  "Sequences per step (a time budget that affords under 150 steps halves it, "
                  "down to 4, unless given)")
      ->capture_default_str()
      ->each([a](const std::string&) { a->batch_given = true; });
  cmd->add_option("--seq", a->s.seq, "Tokens per sequence (Perceiver AR: its window)")
      ->capture_default_str();
  cmd->add_option("--latents", a->s.latents,
                  "Perceiver AR latents at the end of each window (0 = a quarter of --seq)");
  cmd->add_option("--lr", a->s.lr, "Peak learning rate (the same for every arch)")
      ->capture_default_str();
  cmd->add_option("--seed", a->s.seed, "Seed: initialisation and batch order")
      ->check(kUnsigned)
      ->capture_default_str();
  cmd->add_option("--val-fraction", a->s.val_fraction, "Held-out fraction of the data")
      ->capture_default_str();
  cmd->add_option("--eval-batches", a->s.eval_batches, "Validation batches per evaluation")
      ->capture_default_str();
  cmd->add_option("--contexts", a->s.contexts, "Contexts at which decode is timed")->delimiter(',');
  cmd->add_option("--decode-steps", a->s.decode_steps, "Timed decode tokens per context")
      ->capture_default_str();
  cmd->add_option("--prefill-tokens", a->s.prefill_tokens, "Prompt length of the prefill timing")
      ->capture_default_str();
  cmd->add_flag("--tasks", a->tasks,
                "Also train and score small models of each arch on the synthetic tasks");
  add_task_suite_flags(*cmd, a->task);
  cmd->add_option("--against", a->against,
                  "An earlier report's results.json: print each figure beside it, flag "
                  "regressions");
  cmd->add_flag("--overwrite", a->overwrite, "Replace a compare with other settings in --out");
  cmd->add_option("--threads", a->s.threads, "Worker threads (0 = all cores)");
  cmd->callback([a] { run_compare(*a); });
}

}  // namespace pf::cli
