// Two builds of bench_lm on the same presets, run alternately in rounds (so drift of the
// machine over time falls on both): training tokens/s and decode ms/token of the new build
// as ratios of the old one's, from the median of the rounds (robust to one lucky run; the
// best of the rounds is reported too).
// Usage: bench_builds --old OLD/bench_lm --new NEW/bench_lm --models a,b [--rounds 3] [--out F]
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

using nlohmann::json;

namespace {

json run(const std::string& bin, const std::string& model, const std::string& args) {
  const std::string out = "/tmp/bench_builds_" + std::to_string(::getpid()) + ".json";
  const std::string cmd =
      bin + " --models " + model + " " + args + " --out " + out + " > /dev/null";
  std::fprintf(stderr, "$ %s\n", cmd.c_str());
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("failed: " + cmd);
  std::ifstream f(out);
  json j = json::parse(f);
  std::remove(out.c_str());
  return j["models"][0];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Old build against new build, alternating, best of rounds (JSON)"};
  std::string old_bin, new_bin, models = "transformer-small", out_file;
  std::string args = "--train-seq 512 --batch 8 --train-steps 3 --prefill 256 --decode 64";
  int rounds = 3;
  app.add_option("--old", old_bin, "The baseline bench_lm")->required();
  app.add_option("--new", new_bin, "The bench_lm under test")->required();
  app.add_option("--models", models, "Comma-separated presets")->capture_default_str();
  app.add_option("--args", args, "Arguments for both bench_lm runs")->capture_default_str();
  app.add_option("--rounds", rounds)->capture_default_str();
  app.add_option("--out", out_file, "Also write the JSON here");
  CLI11_PARSE(app, argc, argv);

  std::vector<std::string> names;
  std::stringstream ss(models);
  for (std::string m; std::getline(ss, m, ',');) names.push_back(m);
  // runs[build][model] = {train tokens/s per round, decode ms/token per round}
  std::map<std::string, std::map<std::string, std::pair<std::vector<double>, std::vector<double>>>>
      runs;
  for (int r = 0; r < rounds; ++r)
    for (const auto& m : names)
      for (int k = 0; k < 2; ++k) {
        // Alternate which build goes first, so neither always runs on a warmer machine.
        const bool old_first = (r + k) % 2 == 0;
        const std::string which = old_first ? "old" : "new";
        json j = run(old_first ? old_bin : new_bin, m, args);
        auto& b = runs[which][m];
        if (j.contains("train")) b.first.push_back(j["train"]["tokens_per_s"].get<double>());
        if (j.contains("decode")) b.second.push_back(j["decode"]["ms_per_token"].get<double>());
      }
  json res = {{"benchmark", "builds"},
              {"old", old_bin},
              {"new", new_bin},
              {"args", args},
              {"rounds", rounds}};
  auto median = [](std::vector<double> v) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  };
  auto stats = [&](const std::pair<std::vector<double>, std::vector<double>>& r) {
    const auto& t = r.first;
    const auto& d = r.second;
    return json{
        {"train_tokens_per_s_median", median(t)},
        {"train_tokens_per_s_best", t.empty() ? 0.0 : *std::max_element(t.begin(), t.end())},
        {"train_tokens_per_s_runs", t},
        {"decode_ms_per_token_median", median(d)},
        {"decode_ms_per_token_best", d.empty() ? 0.0 : *std::min_element(d.begin(), d.end())},
        {"decode_ms_per_token_runs", d}};
  };
  for (const auto& m : names) {
    const json o = stats(runs["old"][m]), n = stats(runs["new"][m]);
    const double tr = n["train_tokens_per_s_median"].get<double>() /
                      std::max(1e-30, o["train_tokens_per_s_median"].get<double>());
    const double de = o["decode_ms_per_token_median"].get<double>() /
                      std::max(1e-30, n["decode_ms_per_token_median"].get<double>());
    json row = {{"model", m},
                {"old", o},
                {"new", n},
                {"train_speed_new_over_old", tr},
                {"decode_speed_new_over_old", de}};
    std::fprintf(stderr, "%s: training %.3fx, decode %.3fx (new / old speed, medians)\n", m.c_str(),
                 tr, de);
    res["models"].push_back(row);
  }
  std::printf("%s\n", res.dump(2).c_str());
  if (!out_file.empty()) std::ofstream(out_file) << res.dump(2) << "\n";
}
