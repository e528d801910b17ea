// Weight precision against speed, in one run: prefill and decode tokens/s of each model with
// f32, bf16 and int8 matrices, the weight bytes decode streams per second, and the machine's
// streaming read bandwidth measured in the same run (the ceiling decode works against).
// Usage: bench_weights [--models mamba-130m,mamba2-130m,llama125m] [--out FILE]
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "base/cpu_features.h"
#include "base/threads.h"
#include "bench/bench_common.h"
#include "bench/presets.h"
#include "kernels/cpu/simd.h"
#include "models/compact_weights.h"
#include "models/lm.h"

using nlohmann::json;

namespace {

namespace simd = pf::cpu::simd;

// Best of `reps` passes summing a buffer far larger than the caches, all threads reading.
double read_bandwidth_gbps(int64_t bytes, int reps) {
  const int64_t n = bytes / static_cast<int64_t>(sizeof(float));
  std::vector<float> buf(static_cast<size_t>(n), 1.0f);
  double best = 1e30, sink = 0;
  for (int r = 0; r < reps; ++r) {
    pf::Timer t;
    double total = 0;
#pragma omp parallel for reduction(+ : total) schedule(static)
    for (int64_t i0 = 0; i0 < n; i0 += 8192) {
      // Four independent accumulators: the loop is bound by the loads, not by add latency.
      simd::v16 a0{}, a1{}, a2{}, a3{};
      const float* p = buf.data() + i0;
      for (int64_t i = 0; i + 64 <= std::min<int64_t>(8192, n - i0); i += 64) {
        a0 += simd::load(p + i), a1 += simd::load(p + i + 16);
        a2 += simd::load(p + i + 32), a3 += simd::load(p + i + 48);
      }
      total += simd::hsum((a0 + a1) + (a2 + a3));
    }
    best = std::min(best, t.seconds());
    sink += total;
  }
  if (sink < 0) std::printf("%f", sink);  // keeps the reads
  return bytes / best / 1e9;
}

// Bytes one decoded token reads: every parameter except an untied input embedding (decode
// reads one row of it).
int64_t streamed_bytes(pf::LanguageModel& m) {
  const bool tied = m.config_json().value("tie_word_embeddings", true);
  int64_t b = 0;
  m.visit_params([&](const std::string&, pf::Var& p, pf::ParamKind k) {
    if (k == pf::ParamKind::Embedding && !tied) return;
    b += p.value().nbytes();
  });
  return b;
}

struct Args {
  int64_t prefill = 256, decode = 32, reps = 3;
};

json bench_format(pf::LanguageModel& m, pf::WeightFormat f, const Args& a, double bw) {
  pf::convert_weights(m, f);
  const int64_t V = m.vocab_size();
  auto toks = pf::bench::random_tokens(a.prefill + a.decode, V, 7);
  auto s = m.new_session(a.prefill + a.decode + 1);
  s->forward(toks.data(), 16, false);  // warm-up
  double pre = 1e30, dec = 1e30;
  for (int64_t r = 0; r < a.reps; ++r) {
    s->reset();
    pf::Timer tp;
    s->forward(toks.data(), a.prefill, false);
    pre = std::min(pre, tp.seconds());
    pf::Timer td;
    for (int64_t i = 0; i < a.decode; ++i) s->forward(&toks[a.prefill + i], 1, false);
    dec = std::min(dec, td.seconds());
  }
  const int64_t bytes = streamed_bytes(m);
  const double dtps = a.decode / dec, gbps = bytes * dtps / 1e9;
  std::fprintf(stderr,
               "  %-5s weights %7.1f MiB: prefill %6.0f tok/s, decode %6.1f tok/s, "
               "%5.1f GB/s = %3.0f%% of the read bandwidth\n",
               pf::weight_format_name(f), pf::model_weight_bytes(m) / 1048576.0,
               a.prefill / pre, dtps, gbps, 100 * gbps / bw);
  return {{"weights", pf::weight_format_name(f)},
          {"weight_mib", pf::model_weight_bytes(m) / 1048576.0},
          {"streamed_mib_per_token", bytes / 1048576.0},
          {"prefill_tokens", a.prefill},
          {"prefill_tokens_per_s", a.prefill / pre},
          {"decode_tokens_per_s", dtps},
          {"decode_ms_per_token", 1000 * dec / a.decode},
          {"weight_stream_gb_per_s", gbps},
          {"fraction_of_read_bandwidth", gbps / bw}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Prefill and decode speed per weight precision (JSON)"};
  std::string models = "mamba-130m,mamba2-130m,llama125m", formats = "f32,bf16,int8", out_file;
  int threads = 2;
  Args a;
  app.add_option("--models", models, "Comma-separated presets")->capture_default_str();
  app.add_option("--weights", formats, "Formats; the first is the baseline")->capture_default_str();
  app.add_option("--threads", threads)->capture_default_str();
  app.add_option("--prefill", a.prefill)->capture_default_str();
  app.add_option("--decode", a.decode)->capture_default_str();
  app.add_option("--reps", a.reps, "Repetitions (best is reported)")->capture_default_str();
  app.add_option("--out", out_file, "Also write the JSON here");
  CLI11_PARSE(app, argc, argv);
  pf::set_num_threads(threads);

  const double bw = read_bandwidth_gbps(int64_t{1} << 30, 3);
  std::fprintf(stderr, "read bandwidth %.1f GB/s on %d threads; %s\n", bw, pf::num_threads(),
               pf::cpu_feature_list().c_str());
  json res = {{"benchmark", "weights"},
              {"threads", pf::num_threads()},
              {"cpu", pf::cpu_feature_list()},
              {"read_bandwidth_gb_per_s", bw}};
  std::vector<pf::WeightFormat> fs;
  {
    std::stringstream ss(formats);
    std::string w;
    while (std::getline(ss, w, ',')) fs.push_back(pf::parse_weight_format(w));
  }
  std::stringstream ss(models);
  std::string name;
  while (std::getline(ss, name, ',')) {
    auto m = pf::create_model(pf::bench::preset(name, 0, 0), 1);
    std::fprintf(stderr, "%s: %.1fM params\n", name.c_str(), m->num_params() / 1e6);
    m->visit_params([](const std::string&, pf::Var& p, pf::ParamKind) { p.set_requires_grad(false); });
    json r = {{"model", name}, {"params", m->num_params()}};
    for (pf::WeightFormat f : fs) r["formats"].push_back(bench_format(*m, f, a, bw));
    const json& base = r["formats"][0];
    for (json& x : r["formats"]) {
      x["decode_vs_baseline"] =
          x["decode_tokens_per_s"].get<double>() / base["decode_tokens_per_s"].get<double>();
      x["prefill_vs_baseline"] =
          x["prefill_tokens_per_s"].get<double>() / base["prefill_tokens_per_s"].get<double>();
    }
    res["models"].push_back(r);
  }
  std::printf("%s\n", res.dump(2).c_str());
  if (!out_file.empty()) std::ofstream(out_file) << res.dump(2) << "\n";
}
