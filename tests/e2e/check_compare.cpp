// Checks a compare report directory: every artefact exists, every number is finite and
// plausible, parameter counts match within 5%. Usage: check_compare DIR ARCH,ARCH,... CONTEXTS
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "FAIL: %s\n", what.c_str());
    ++failures;
  }
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(item);
  return out;
}

bool number_in(const nlohmann::json& v, double lo, double hi) {
  return v.is_number() && std::isfinite(v.get<double>()) && v.get<double>() > lo &&
         v.get<double>() < hi;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: check_compare DIR ARCHS CONTEXTS\n");
    return 2;
  }
  const fs::path dir = argv[1];
  const std::vector<std::string> archs = split(argv[2]), contexts = split(argv[3]);
  for (const char* f : {"results.json", "report.md", "report.html", "bpb_vs_tokens.png",
                        "decode_latency.png", "state_memory.png", "plan.json"})
    check(fs::exists(dir / f) && fs::file_size(dir / f) > 0, std::string(f) + " is missing");
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".png")
      check(slurp(e.path()).rfind("\x89PNG\r\n\x1a\n", 0) == 0, e.path().string() + " is no PNG");
  const nlohmann::json r = nlohmann::json::parse(slurp(dir / "results.json"));
  const double budget = r["budget"]["params"].get<double>();
  check(r["archs"].size() == archs.size(), "results.json has the wrong number of archs");
  const std::string md = slurp(dir / "report.md"), html = slurp(dir / "report.html");
  for (size_t i = 0; i < archs.size() && i < r["archs"].size(); ++i) {
    const nlohmann::json& a = r["archs"][i];
    const std::string n = archs[i];
    check(a["arch"] == n, "arch " + std::to_string(i) + " is not " + n);
    check(!a.contains("failed"), n + " failed");
    check(std::abs(a["params"].get<double>() - budget) <= 0.05 * budget,
          n + ": parameters not within 5% of the budget");
    check(number_in(a["val_bpb"], 0.0, 9.0), n + ": val_bpb implausible");
    check(number_in(a["train"]["tokens_per_s"], 0.0, 1e9), n + ": tokens/s");
    check(number_in(a["train"]["peak_mem_mib"], 1.0, 1e6), n + ": peak memory");
    check(number_in(a["prefill_tokens_per_s"], 0.0, 1e9), n + ": prefill tokens/s");
    check(a["decode"].size() == contexts.size(), n + ": decode entries");
    for (size_t c = 0; c < a["decode"].size() && c < contexts.size(); ++c) {
      const nlohmann::json& d = a["decode"][c];
      check(d["context"].get<int64_t>() == std::stoll(contexts[c]), n + ": decode context");
      check(number_in(d["ms_per_token"], 0.0, 1e5), n + ": decode ms/token");
      check(number_in(d["state_mib"], 0.0, 1e6), n + ": state MiB");
    }
    check(!a["curve"].empty(), n + ": empty curve");
    bool any_val = false;
    for (const nlohmann::json& p : a["curve"]) {
      check(number_in(p["loss"], 0.0, 20.0), n + ": curve loss");
      any_val |= p["val_bpb"].is_number();
    }
    check(any_val, n + ": no validation point on the curve");
    check(md.find(n) != std::string::npos, n + " is not in report.md");
    check(html.find(n) != std::string::npos, n + " is not in report.html");
    check(fs::exists(dir / "runs" / n / "metrics.jsonl"), n + ": no metrics.jsonl");
  }
  if (failures == 0) std::printf("check_compare: %s ok (%zu archs)\n", argv[1], archs.size());
  return failures == 0 ? 0 : 1;
}
