// `postformer plot RUN...`: training loss and validation bits per byte against tokens, for
// one or several runs, from their metrics.jsonl, into one PNG (gnuplot).
#include <cstdio>
#include <filesystem>

#include "apps/commands.h"
#include "base/error.h"
#include "report/charts.h"
#include "train/metrics_log.h"

namespace pf::cli {

namespace {

namespace fs = std::filesystem;

struct PlotArgs {
  std::vector<std::string> runs;
  std::string out = "training.png", title;
  bool no_train = false;
};

void run_plot(const PlotArgs& a) {
  Chart c;
  c.title = a.title.empty() ? "Training curves" : a.title;
  c.xlabel = "training tokens";
  c.ylabel = "bits per byte";
  for (const std::string& run : a.runs) {
    const std::vector<nlohmann::json> rows = read_metrics(run);
    PF_CHECK(!rows.empty(), run, ": metrics.jsonl holds no rows yet");
    const std::string name = fs::path(run).filename().empty()
                                 ? fs::path(run).parent_path().filename().string()
                                 : fs::path(run).filename().string();
    Series train = make_series(name + " train"), val = make_series(name + " validation");
    for (const nlohmann::json& r : rows) {
      PF_CHECK(r.contains("tokens") && r["tokens"].is_number(), run,
               ": a metrics row has no 'tokens'");
      const double tokens = r["tokens"].get<double>();
      if (r.contains("train_bpb") && r["train_bpb"].is_number()) {
        train.x.push_back(tokens);
        train.y.push_back(r["train_bpb"].get<double>());
      }
      if (r.contains("val_bpb") && r["val_bpb"].is_number()) {
        val.x.push_back(tokens);
        val.y.push_back(r["val_bpb"].get<double>());
      }
    }
    if (!a.no_train) c.series.push_back(train);
    c.series.push_back(val);
  }
  draw_png(c, a.out);
  std::printf("wrote %s (%zu runs)\n", a.out.c_str(), a.runs.size());
}

}  // namespace

void add_plot(CLI::App& app) {
  auto a = std::make_shared<PlotArgs>();
  auto* cmd = app.add_subcommand(
      "plot", "Draw training and validation bits per byte against tokens for runs (PNG)");
  cmd->add_option("runs", a->runs, "Run directories (or metrics.jsonl files)")->required();
  cmd->add_option("--out", a->out, "PNG to write")->capture_default_str();
  cmd->add_option("--title", a->title, "Chart title");
  cmd->add_flag("--no-train", a->no_train, "Validation curves only");
  cmd->callback([a] { run_plot(*a); });
}

}  // namespace pf::cli
