#include "report/compare_report.h"

#include <algorithm>
#include <sstream>

#include "base/error.h"
#include "report/report_values.h"

namespace pf {

using report::decode_at;
using report::fmt;
using report::num;
using report::Rows;

namespace report {

void check_results(const nlohmann::json& r) {
  PF_CHECK(r.is_object(), "results.json: not a JSON object");
  for (const char* k : {"archs", "contexts"})
    PF_CHECK(r.contains(k) && r[k].is_array(), "results.json: '", k, "' is missing or not a list");
  for (size_t i = 0; i < r["contexts"].size(); ++i)
    PF_CHECK(r["contexts"][i].is_number_integer(), "results.json: contexts[", i,
             "] is not an integer");
  for (size_t i = 0; i < r["archs"].size(); ++i) {
    const nlohmann::json& a = r["archs"][i];
    PF_CHECK(a.is_object() && a.contains("arch") && a["arch"].is_string(), "results.json: archs[",
             i, "].arch is missing");
    if (a.contains("decode")) {
      PF_CHECK(a["decode"].is_array(), "results.json: archs[", i, "].decode is not a list");
      for (size_t d = 0; d < a["decode"].size(); ++d)
        for (const char* k : {"context", "ms_per_token", "state_mib"})
          PF_CHECK(a["decode"][d].is_object() && a["decode"][d].contains(k), "results.json: archs[",
                   i, "].decode[", d, "].", k, " is missing");
    }
  }
}

}  // namespace report

namespace {

std::vector<int64_t> contexts_of(const nlohmann::json& r) {
  std::vector<int64_t> c;
  for (const auto& v : r["contexts"]) c.push_back(v.get<int64_t>());
  return c;
}

std::string ctx_name(int64_t c) {
  return c >= 1024 && c % 1024 == 0 ? std::to_string(c / 1024) + "k" : std::to_string(c);
}

double decode_ms(const nlohmann::json& a, int64_t c) {
  const nlohmann::json* d = decode_at(a, c);
  return d ? num(*d, {"ms_per_token"}) : std::nan("");
}
double state_mib(const nlohmann::json& a, int64_t c) {
  const nlohmann::json* d = decode_at(a, c);
  return d ? num(*d, {"state_mib"}) : std::nan("");
}

}  // namespace

// The main table as rows of cells (header first).
Rows report::main_rows(const nlohmann::json& r) {
  const std::vector<int64_t> ctx = contexts_of(r);
  std::vector<std::string> head = {"arch",        "params (M)", "val bpb",
                                   "train tok/s", "peak MiB",   "prefill tok/s"};
  for (int64_t c : ctx) head.push_back("ms/tok @" + ctx_name(c));
  if (!ctx.empty()) {
    head.push_back("state MiB @" + ctx_name(ctx.back()));
    head.push_back("decode " + ctx_name(ctx.back()) + "/" + ctx_name(ctx.front()));
  }
  std::vector<std::vector<std::string>> rows = {head};
  for (const nlohmann::json& a : r["archs"]) {
    std::vector<std::string> row = {a["arch"].get<std::string>(),
                                    fmt(num(a, {"params"}) / 1e6, "%.3f"),
                                    fmt(num(a, {"val_bpb"}), "%.4f"),
                                    fmt(num(a, {"train", "tokens_per_s"}), "%.0f"),
                                    fmt(num(a, {"train", "peak_mem_mib"}), "%.0f"),
                                    fmt(num(a, {"prefill_tokens_per_s"}), "%.0f")};
    for (int64_t c : ctx) row.push_back(fmt(decode_ms(a, c), "%.3f"));
    if (!ctx.empty()) {
      row.push_back(fmt(state_mib(a, ctx.back()), "%.2f"));
      row.push_back(fmt(decode_ms(a, ctx.back()) / decode_ms(a, ctx.front()), "%.2fx"));
    }
    if (a.value("failed", false)) row[2] = "failed";
    rows.push_back(row);
  }
  return rows;
}

namespace {

std::string aligned(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w;
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) {
      if (w.size() <= i) w.push_back(0);
      w[i] = std::max(w[i], row[i].size());
    }
  std::ostringstream os;
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t i = 0; i < rows[r].size(); ++i) {
      const std::string& cell = rows[r][i];
      if (i == 0)
        os << cell << std::string(w[i] - cell.size(), ' ');
      else
        os << "  " << std::string(w[i] - cell.size(), ' ') << cell;
    }
    os << "\n";
  }
  return os.str();
}

std::string markdown_table(const std::vector<std::vector<std::string>>& rows) {
  std::ostringstream os;
  for (size_t r = 0; r < rows.size(); ++r) {
    os << "|";
    for (const std::string& c : rows[r]) os << " " << c << " |";
    os << "\n";
    if (r == 0) {
      os << "|";
      for (size_t i = 0; i < rows[0].size(); ++i) os << (i == 0 ? "---|" : "---:|");
      os << "\n";
    }
  }
  return os.str();
}

}  // namespace

Rows report::config_rows(const nlohmann::json& r) {
  std::vector<std::vector<std::string>> rows = {{"arch", "parameters", "shape"}};
  for (const nlohmann::json& a : r["archs"])
    rows.push_back({a["arch"].get<std::string>(), fmt(num(a, {"params"}), "%.0f"),
                    a.value("summary", std::string("-"))});
  return rows;
}

Rows report::decode_rows(const nlohmann::json& r) {
  std::vector<std::vector<std::string>> rows = {
      {"arch", "context", "decode ms/token", "state MiB"}};
  for (const nlohmann::json& a : r["archs"])
    for (int64_t c : contexts_of(r))
      rows.push_back({a["arch"].get<std::string>(), std::to_string(c), fmt(decode_ms(a, c), "%.3f"),
                      fmt(state_mib(a, c), "%.3f")});
  return rows;
}

std::vector<std::pair<std::string, Rows>> report::task_rows(const nlohmann::json& r) {
  std::vector<std::pair<std::string, std::vector<std::vector<std::string>>>> out;
  for (const char* task : {"selective_copy", "induction", "mqar"}) {
    std::vector<std::vector<std::string>> rows = {{"arch", "length", "pairs", "accuracy"}};
    for (const nlohmann::json& a : r["archs"]) {
      if (!a.contains("tasks") || !a["tasks"].contains(task)) continue;
      for (const nlohmann::json& row : a["tasks"][task])
        rows.push_back({a["arch"].get<std::string>(), fmt(num(row, {"length"}), "%.0f"),
                        fmt(num(row, {"pairs"}), "%.0f"),
                        fmt(100.0 * num(row, {"accuracy"}), "%.1f%%")});
    }
    if (rows.size() > 1) out.emplace_back(task, rows);
  }
  return out;
}

std::string markdown_of(const nlohmann::json& r, const std::vector<std::string>& pngs);

std::string report_table(const nlohmann::json& results) {
  return report::guarded([&] {
    report::check_results(results);
    return aligned(report::main_rows(results));
  });
}

std::string report_markdown(const nlohmann::json& r, const std::vector<std::string>& pngs) {
  return report::guarded([&] { return markdown_of(r, pngs); });
}

std::string markdown_of(const nlohmann::json& r, const std::vector<std::string>& pngs) {
  report::check_results(r);
  std::ostringstream os;
  os << "# postformer compare\n\n";
  os << "- corpus: `" << r.value("/corpus/path"_json_pointer, std::string("?")) << "` ("
     << fmt(num(r, {"corpus", "train_tokens"}), "%.0f") << " train / "
     << fmt(num(r, {"corpus", "val_tokens"}), "%.0f") << " validation tokens)\n";
  os << "- budget: " << fmt(num(r, {"budget", "params"}) / 1e6, "%.2f")
     << "M parameters per model; " << fmt(num(r, {"budget", "tokens_per_arch"}) / 1e6, "%.2f")
     << "M training tokens each (" << fmt(num(r, {"budget", "steps"}), "%.0f") << " steps of "
     << fmt(num(r, {"budget", "batch"}), "%.0f") << " x " << fmt(num(r, {"budget", "seq"}), "%.0f")
     << "), the same batches in the same order";
  for (const auto& a : r.value("archs", nlohmann::json::array()))
    if (a.is_object() && a.contains("train") && a["train"].is_object() &&
        a["train"].value("steps", nlohmann::json()).is_number() &&
        a["train"]["steps"] != r.value("/budget/steps"_json_pointer, nlohmann::json()))
      os << "; " << a.value("arch", std::string("?")) << " scores only part of each sequence and "
         << "takes " << fmt(num(a, {"train", "steps"}), "%.0f")
         << " steps for as many tokens with a loss";
  os << "\n";
  os << "- machine: " << r.value("cpu", std::string("?")) << ", "
     << fmt(num(r, {"threads"}), "%.0f") << " threads; " << r.value("created", std::string(""))
     << "\n\n";
  os << "## Models\n\n" << markdown_table(report::config_rows(r)) << "\n";
  os << "## Results\n\n" << markdown_table(report::main_rows(r)) << "\n";
  os << "val bpb: validation bits per byte (lower is better). Decode: one token with the "
        "given context already in the cache or state.\n\n";
  os << "## Decode latency and state memory by context\n\n"
     << markdown_table(report::decode_rows(r)) << "\n";
  for (const auto& [task, rows] : report::task_rows(r))
    os << "## Task: " << task << "\n\n" << markdown_table(rows) << "\n";
  if (!pngs.empty()) {
    os << "## Plots\n\n";
    for (const std::string& p : pngs) os << "![" << p << "](" << p << ")\n\n";
  }
  return os.str();
}

namespace {

struct Figure {
  std::string name;
  double now, old;
  bool lower_better;
  double allowance;  // relative, or absolute points for accuracies
  bool absolute = false;
};

std::vector<Figure> figures(const nlohmann::json& a, const nlohmann::json& b,
                            const std::vector<int64_t>& ctx) {
  std::vector<Figure> f = {{"val bpb", num(a, {"val_bpb"}), num(b, {"val_bpb"}), true, 0.02},
                           {"train tok/s", num(a, {"train", "tokens_per_s"}),
                            num(b, {"train", "tokens_per_s"}), false, 0.10},
                           {"peak MiB", num(a, {"train", "peak_mem_mib"}),
                            num(b, {"train", "peak_mem_mib"}), true, 0.10},
                           {"prefill tok/s", num(a, {"prefill_tokens_per_s"}),
                            num(b, {"prefill_tokens_per_s"}), false, 0.10}};
  for (int64_t c : ctx) {
    f.push_back({"decode ms @" + ctx_name(c), decode_ms(a, c), decode_ms(b, c), true, 0.10});
    f.push_back({"state MiB @" + ctx_name(c), state_mib(a, c), state_mib(b, c), true, 0.10});
  }
  if (a.contains("tasks") && b.contains("tasks") && a["tasks"].is_object())
    for (const auto& [task, rows] : a["tasks"].items()) {
      if (!b["tasks"].contains(task) || !rows.is_array()) continue;
      for (const nlohmann::json& ra : rows)
        for (const nlohmann::json& rb : b["tasks"][task])
          if (num(ra, {"length"}) == num(rb, {"length"}) &&
              (num(ra, {"pairs"}) == num(rb, {"pairs"}) ||
               (std::isnan(num(ra, {"pairs"})) && std::isnan(num(rb, {"pairs"}))))) {
            std::string n = task + " @" + fmt(num(ra, {"length"}), "%.0f");
            if (std::isfinite(num(ra, {"pairs"}))) n += " pairs " + fmt(num(ra, {"pairs"}), "%.0f");
            f.push_back({n + " acc%", 100 * num(ra, {"accuracy"}), 100 * num(rb, {"accuracy"}),
                         false, 2.0, true});
          }
    }
  return f;
}

bool regressed(const Figure& f) {
  if (!std::isfinite(f.now) || !std::isfinite(f.old)) return false;
  if (f.absolute) return f.lower_better ? f.now > f.old + f.allowance : f.now < f.old - f.allowance;
  if (f.old == 0) return false;
  const double rel = (f.now - f.old) / std::abs(f.old);
  return f.lower_better ? rel > f.allowance : rel < -f.allowance;
}

const nlohmann::json* find_arch(const nlohmann::json& r, const std::string& name) {
  for (const nlohmann::json& a : r["archs"])
    if (a["arch"] == name) return &a;
  return nullptr;
}

int compare_into(const nlohmann::json& now, const nlohmann::json& old, std::ostringstream* os) {
  report::check_results(now);
  report::check_results(old);
  const std::vector<int64_t> ctx = contexts_of(now);
  int regressions = 0;
  std::vector<std::vector<std::string>> rows = {{"arch", "figure", "now", "before", "change", ""}};
  for (const nlohmann::json& a : now["archs"]) {
    const std::string name = a["arch"].get<std::string>();
    const nlohmann::json* b = find_arch(old, name);
    if (!b) {
      rows.push_back({name, "(new: not in the earlier report)", "", "", "", ""});
      continue;
    }
    for (const Figure& f : figures(a, *b, ctx)) {
      const bool bad = regressed(f);
      regressions += bad;
      const std::string change =
          f.absolute ? fmt(f.now - f.old, "%+.1f pt")
                     : fmt(f.old != 0 ? 100.0 * (f.now - f.old) / std::abs(f.old) : std::nan(""),
                           "%+.1f%%");
      rows.push_back(
          {name, f.name, fmt(f.now, "%.4g"), fmt(f.old, "%.4g"), change, bad ? "REGRESSION" : ""});
    }
  }
  for (const nlohmann::json& b : old["archs"])
    if (!find_arch(now, b["arch"].get<std::string>()))
      rows.push_back(
          {b["arch"].get<std::string>(), "(missing: only in the earlier report)", "", "", "", ""});
  if (os) *os << aligned(rows) << regressions << " regressions\n";
  return regressions;
}

}  // namespace

std::string report_against(const nlohmann::json& now, const nlohmann::json& old) {
  return report::guarded([&] {
    std::ostringstream os;
    compare_into(now, old, &os);
    return os.str();
  });
}

int count_regressions(const nlohmann::json& now, const nlohmann::json& old) {
  return report::guarded([&] { return compare_into(now, old, nullptr); });
}

}  // namespace pf
