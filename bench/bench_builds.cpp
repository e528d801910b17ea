// Two builds of bench_lm on the same presets, run alternately in rounds (so drift of the
// machine over time falls on both), best of the rounds kept for each: training tokens/s and
// decode ms/token of the new build as ratios of the old one's.
// Usage: bench_builds --old OLD/bench_lm --new NEW/bench_lm --models a,b [--rounds 3] [--out F]
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unistd.h>

using nlohmann::json;

namespace {

json run(const std::string& bin, const std::string& model, const std::string& args) {
  const std::string out = "/tmp/bench_builds_" + std::to_string(::getpid()) + ".json";
  const std::string cmd = bin + " --models " + model + " " + args + " --out " + out + " > /dev/null";
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
  // best[build][model] = {train tokens/s (max), decode ms/token (min)}
  std::map<std::string, std::map<std::string, std::pair<double, double>>> best;
  for (int r = 0; r < rounds; ++r)
    for (const auto& m : names)
      for (int k = 0; k < 2; ++k) {
        // Alternate which build goes first, so neither always runs on a warmer machine.
        const bool old_first = (r + k) % 2 == 0;
        const std::string which = old_first ? "old" : "new";
        json j = run(old_first ? old_bin : new_bin, m, args);
        auto& b = best[which].try_emplace(m, 0.0, 1e30).first->second;
        if (j.contains("train")) b.first = std::max(b.first, j["train"]["tokens_per_s"].get<double>());
        if (j.contains("decode"))
          b.second = std::min(b.second, j["decode"]["ms_per_token"].get<double>());
      }
  json res = {{"benchmark", "builds"}, {"old", old_bin}, {"new", new_bin}, {"args", args},
              {"rounds", rounds}};
  for (const auto& m : names) {
    const auto& o = best["old"][m];
    const auto& n = best["new"][m];
    json row = {{"model", m},
                {"old", {{"train_tokens_per_s", o.first}, {"decode_ms_per_token", o.second}}},
                {"new", {{"train_tokens_per_s", n.first}, {"decode_ms_per_token", n.second}}},
                {"train_speed_new_over_old", n.first / o.first},
                {"decode_speed_new_over_old", o.second / n.second}};
    std::fprintf(stderr, "%s: training %.3fx, decode %.3fx (new / old speed)\n", m.c_str(),
                 n.first / o.first, o.second / n.second);
    res["models"].push_back(row);
  }
  std::printf("%s\n", res.dump(2).c_str());
  if (!out_file.empty()) std::ofstream(out_file) << res.dump(2) << "\n";
}
