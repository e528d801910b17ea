// The plots of a compare report, and write_report, which writes every artefact.
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "base/error.h"
#include "io/atomic_file.h"
#include "report/charts.h"
#include "report/compare_report.h"
#include "report/report_values.h"

namespace pf {

namespace fs = std::filesystem;
using report::num;

namespace {
std::vector<std::string> plots_of(const nlohmann::json& r, const std::string& dir);
}

std::vector<std::string> write_plots(const nlohmann::json& r, const std::string& dir) {
  return report::guarded([&] { return plots_of(r, dir); });
}

namespace {
std::vector<std::string> plots_of(const nlohmann::json& r, const std::string& dir) {
  report::check_results(r);
  std::vector<std::string> written;
  auto draw = [&](const Chart& c, const std::string& name) {
    bool any = false;
    for (const Series& s : c.series) any |= !s.x.empty();
    if (!any) return;
    draw_png(c, (fs::path(dir) / name).string());
    written.push_back(name);
  };
  const double bpt = std::isfinite(num(r, {"corpus", "bytes_per_token"}))
                         ? num(r, {"corpus", "bytes_per_token"})
                         : 1.0;
  Chart val = make_chart("Validation bits per byte against training tokens", "training tokens",
                         "validation bits per byte");
  Chart loss = make_chart("Training loss against training tokens", "training tokens",
                          "training bits per byte");
  Chart lat =
      make_chart("Decode latency against context", "context (tokens)", "ms per token", true, false);
  Chart mem = make_chart("Inference state memory against context", "context (tokens)", "state MiB",
                         true, true);
  for (const nlohmann::json& a : r["archs"]) {
    const std::string name = a["arch"].get<std::string>();
    Series v = make_series(name), l = make_series(name), d = make_series(name),
           m = make_series(name);
    if (a.contains("curve") && a["curve"].is_array())
      for (const nlohmann::json& p : a["curve"]) {
        const double t = num(p, {"tokens"});
        if (std::isfinite(num(p, {"val_bpb"})))
          v.x.push_back(t), v.y.push_back(num(p, {"val_bpb"}));
        if (std::isfinite(num(p, {"loss"})))
          l.x.push_back(t), l.y.push_back(num(p, {"loss"}) / std::log(2.0) / bpt);
      }
    if (a.contains("decode") && a["decode"].is_array())
      for (const nlohmann::json& e : a["decode"]) {
        d.x.push_back(num(e, {"context"}));
        d.y.push_back(num(e, {"ms_per_token"}));
        m.x.push_back(num(e, {"context"}));
        m.y.push_back(num(e, {"state_mib"}));
      }
    val.series.push_back(v);
    loss.series.push_back(l);
    lat.series.push_back(d);
    mem.series.push_back(m);
  }
  draw(val, "bpb_vs_tokens.png");
  draw(loss, "loss_vs_tokens.png");
  draw(lat, "decode_latency.png");
  draw(mem, "state_memory.png");
  // Tasks: accuracy against length (copying, induction), and MQAR against pairs.
  Chart acc = make_chart("Task accuracy against sequence length", "sequence length", "accuracy (%)",
                         true, false);
  Chart mq = make_chart("MQAR accuracy against key-value pairs", "key-value pairs", "accuracy (%)",
                        true, false);
  for (const nlohmann::json& a : r["archs"]) {
    if (!a.contains("tasks") || !a["tasks"].is_object()) continue;
    const std::string name = a["arch"].get<std::string>();
    for (const auto& [task, rows] : a["tasks"].items()) {
      if (!rows.is_array()) continue;
      Series s = make_series(name + " " + task);
      for (const nlohmann::json& row : rows) {
        s.x.push_back(task == "mqar" ? num(row, {"pairs"}) : num(row, {"length"}));
        s.y.push_back(100.0 * num(row, {"accuracy"}));
      }
      (task == "mqar" ? mq : acc).series.push_back(s);
    }
  }
  draw(acc, "task_accuracy.png");
  draw(mq, "mqar_accuracy.png");
  return written;
}
}  // namespace

void write_report(const nlohmann::json& results, const std::string& dir) {
  report::check_results(results);
  write_file_atomic((fs::path(dir) / "results.json").string(), results.dump(2) + "\n");
  // The figures matter more than the pictures: without gnuplot the report has no plots.
  std::vector<std::string> pngs;
  try {
    pngs = write_plots(results, dir);
  } catch (const Error& e) {
    std::fprintf(stderr, "warning: the report has no plots: %s\n", e.what());
  }
  write_file_atomic((fs::path(dir) / "report.md").string(), report_markdown(results, pngs));
  write_file_atomic((fs::path(dir) / "report.html").string(), report_html(results, dir, pngs));
}

}  // namespace pf
