// The compare report: tables carry every arch's figures, partial results render, bad
// results.json is named, --against flags regressions and only regressions, plots are PNGs.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "base/error.h"
#include "report/charts.h"
#include "report/compare_report.h"

namespace pf {
namespace {

namespace fs = std::filesystem;

nlohmann::json arch(const std::string& name, double bpb, double tps, double ms128, double ms16k) {
  return {{"arch", name},
          {"params", 2000000},
          {"summary", "d_model 192"},
          {"config", {{"hidden_size", 192}}},
          {"train",
           {{"steps", 100},
            {"tokens", 409600},
            {"seconds", 40.0},
            {"tokens_per_s", tps},
            {"peak_mem_mib", 300.0}}},
          {"val_bpb", bpb},
          {"curve",
           {{{"step", 50}, {"tokens", 204800}, {"loss", 1.9}, {"val_bpb", nullptr}},
            {{"step", 100}, {"tokens", 409600}, {"loss", 1.6}, {"val_bpb", bpb}}}},
          {"prefill_tokens_per_s", 40000.0},
          {"decode",
           {{{"context", 128}, {"ms_per_token", ms128}, {"state_mib", 0.5}},
            {{"context", 16384}, {"ms_per_token", ms16k}, {"state_mib", 64.0}}}}};
}

nlohmann::json sample() {
  nlohmann::json r = {
      {"version", 1},
      {"created", "2026-12-02T12:00:00Z"},
      {"cpu", "test <cpu>"},
      {"threads", 2},
      {"corpus",
       {{"path", "data/kjv.txt"},
        {"train_tokens", 4000000},
        {"val_tokens", 40000},
        {"bytes_per_token", 1.0}}},
      {"budget",
       {{"params", 2000000},
        {"minutes", 10.0},
        {"tokens", 0},
        {"tokens_per_arch", 409600},
        {"steps", 100},
        {"batch", 16},
        {"seq", 256}}},
      {"contexts", {128, 16384}},
      {"archs",
       {arch("transformer", 2.3125, 9000, 1.0, 4.0), arch("mamba", 2.4375, 7000, 2.0, 2.0)}}};
  r["archs"][1]["tasks"] = {
      {"induction", {{{"length", 256}, {"accuracy", 1.0}}, {{"length", 4096}, {"accuracy", 0.97}}}},
      {"mqar", {{{"pairs", 8}, {"length", 128}, {"accuracy", 0.5}}}}};
  return r;
}

TEST(CompareReport, Base64MatchesKnownVectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("M"), "TQ==");
  EXPECT_EQ(base64_encode("Ma"), "TWE=");
  EXPECT_EQ(base64_encode("Man"), "TWFu");
  EXPECT_EQ(base64_encode(std::string("\xff\x00\x10", 3)), "/wAQ");
}

TEST(CompareReport, TablesCarryEveryFigure) {
  const nlohmann::json r = sample();
  const std::string t = report_table(r);
  for (const char* s : {"transformer", "mamba", "2.3125", "2.4375", "9000", "4.00x", "1.00x",
                        "64.00", "ms/tok @16k"})
    EXPECT_NE(t.find(s), std::string::npos) << s << " missing from\n" << t;
  const std::string md = report_markdown(r, {"bpb_vs_tokens.png"});
  for (const char* s : {"| transformer |", "Task: induction", "97.0%", "Task: mqar",
                        "![bpb_vs_tokens.png](bpb_vs_tokens.png)"})
    EXPECT_NE(md.find(s), std::string::npos) << s;
}

TEST(CompareReport, PartialResultsRenderWithDashes) {
  nlohmann::json r = sample();
  r["archs"][1] = {{"arch", "retnet"},
                   {"params", 2000000},
                   {"val_bpb", nullptr},
                   {"decode", nlohmann::json::array()},
                   {"failed", true}};
  const std::string t = report_table(r);
  EXPECT_NE(t.find("retnet"), std::string::npos);
  EXPECT_NE(t.find("failed"), std::string::npos);
  EXPECT_NE(t.find(" -"), std::string::npos);
}

TEST(CompareReport, MalformedResultsNameTheKey) {
  nlohmann::json r = sample();
  r["archs"][0]["decode"][1].erase("ms_per_token");
  try {
    report_table(r);
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("archs[0].decode[1].ms_per_token"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(report_table(nlohmann::json::array()), Error);
  nlohmann::json no_archs = sample();
  no_archs.erase("archs");
  EXPECT_THROW(report_markdown(no_archs, {}), Error);
}

TEST(CompareReport, AgainstFlagsRegressionsNotImprovementsOrNoise) {
  const nlohmann::json old = sample();
  EXPECT_EQ(count_regressions(old, old), 0);
  nlohmann::json now = sample();
  now["archs"][0]["val_bpb"] = 2.3125 * 1.05;                   // worse by 5%: flagged
  now["archs"][0]["train"]["tokens_per_s"] = 9500;              // faster: fine
  now["archs"][1]["decode"][1]["ms_per_token"] = 2.1;           // +5%: within noise
  now["archs"][1]["tasks"]["induction"][1]["accuracy"] = 0.90;  // -7 points: flagged
  EXPECT_EQ(count_regressions(now, old), 2);
  const std::string text = report_against(now, old);
  EXPECT_NE(text.find("REGRESSION"), std::string::npos);
  EXPECT_NE(text.find("2 regressions"), std::string::npos);
  nlohmann::json fewer = sample();
  fewer["archs"].erase(1);
  EXPECT_NE(report_against(fewer, old).find("missing"), std::string::npos);
  EXPECT_NE(report_against(old, fewer).find("new"), std::string::npos);
}

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

TEST(CompareReport, WritesEveryArtefactWithPlotsEmbedded) {
  if (!gnuplot_available()) GTEST_SKIP() << "gnuplot is not installed";
  const fs::path dir = fs::temp_directory_path() / ("pf_report_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  write_report(sample(), dir.string());
  for (const char* f :
       {"results.json", "report.md", "report.html", "bpb_vs_tokens.png", "loss_vs_tokens.png",
        "decode_latency.png", "state_memory.png", "task_accuracy.png", "mqar_accuracy.png"})
    EXPECT_TRUE(fs::exists(dir / f)) << f;
  EXPECT_EQ(slurp((dir / "decode_latency.png").string()).rfind("\x89PNG\r\n\x1a\n", 0), 0u);
  const std::string html = slurp((dir / "report.html").string());
  size_t images = 0;
  for (size_t at = 0; (at = html.find("data:image/png;base64,iVBOR", at)) != std::string::npos;
       ++at)
    ++images;
  EXPECT_EQ(images, 6u);
  EXPECT_NE(html.find("test &lt;cpu&gt;"), std::string::npos);  // escaped
  EXPECT_EQ(nlohmann::json::parse(slurp((dir / "results.json").string())), sample());
  fs::remove_all(dir);
}

TEST(CompareReport, ChartsSurviveQuotesAndSkipNonFinitePoints) {
  if (!gnuplot_available()) GTEST_SKIP() << "gnuplot is not installed";
  const std::string png = (fs::temp_directory_path() / "pf_chart_test.png").string();
  const std::string marker = (fs::temp_directory_path() / "pf_chart_ran").string();
  Chart c = make_chart("it's a \"title\" with \\ and '' quotes `touch " + marker + "`", "x", "y");
  c.series.push_back({"a'b", {1, 2, 3}, {1, std::nan(""), 3}});
  draw_png(c, png);
  EXPECT_EQ(slurp(png).rfind("\x89PNG", 0), 0u);
  EXPECT_FALSE(fs::exists(marker)) << "a backquoted command in a title ran";
  Chart empty = make_chart("nothing", "x", "y");
  empty.series.push_back({"s", {1}, {INFINITY}});
  EXPECT_THROW(draw_png(empty, png), Error);
  fs::remove(png);
}

}  // namespace
}  // namespace pf
