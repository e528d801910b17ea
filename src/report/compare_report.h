// The report of a `compare` run, made from its results.json: a terminal table, report.md,
// a self-contained report.html with the plots embedded, the PNG plots, and the view against
// an earlier report that flags regressions.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace pf {

// One row per architecture: params, val bpb, train tok/s, peak MiB, prefill tok/s, decode
// ms/token at each context, state MiB at the largest, and decode largest/smallest context.
std::string report_table(const nlohmann::json& results);
std::string report_markdown(const nlohmann::json& results, const std::vector<std::string>& pngs);
std::string report_html(const nlohmann::json& results, const std::string& dir,
                        const std::vector<std::string>& pngs);
// Draws the plots into dir; returns the file names written.
std::vector<std::string> write_plots(const nlohmann::json& results, const std::string& dir);
// results.json, the plots, report.md and report.html, each written atomically.
void write_report(const nlohmann::json& results, const std::string& dir);

// Each figure now | before | change, with REGRESSION where it got worse by more than the
// noise allowance (bpb +2%, speeds -10%, latency and memory +10%, accuracy -2 points).
std::string report_against(const nlohmann::json& now, const nlohmann::json& old);
int count_regressions(const nlohmann::json& now, const nlohmann::json& old);

std::string base64_encode(const std::string& bytes);

}  // namespace pf
