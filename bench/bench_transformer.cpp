// Transformer throughput: training tokens/s (with model FLOPs as a fraction of the
// f32 GEMM rate measured in the same run), prefill tokens/s and decode ms/token.
// Usage: bench_transformer --shape small|llama125m [--threads 2] [--out FILE]
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "autograd/ops.h"
#include "base/rng.h"
#include "base/threads.h"
#include "bench/bench_common.h"
#include "models/lm.h"
#include "train/adamw.h"

using nlohmann::json;

namespace {

json shape_config(const std::string& shape) {
  if (shape == "small")  // ~10M parameters: d 384, 6 layers, byte vocabulary
    return {{"model_type", "llama"}, {"hidden_size", 384}, {"intermediate_size", 1024},
            {"num_hidden_layers", 6}, {"num_attention_heads", 6}, {"num_key_value_heads", 6},
            {"vocab_size", 256}, {"max_position_embeddings", 4096}, {"tie_word_embeddings", true}};
  if (shape == "llama125m")  // a 125M Llama shape (vocab 32000, untied head)
    return {{"model_type", "llama"}, {"hidden_size", 768}, {"intermediate_size", 2048},
            {"num_hidden_layers", 12}, {"num_attention_heads", 12}, {"num_key_value_heads", 12},
            {"vocab_size", 32000}, {"max_position_embeddings", 4096}, {"tie_word_embeddings", false}};
  throw std::runtime_error("unknown shape " + shape);
}

std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, uint64_t seed) {
  pf::Rng rng(seed);
  std::vector<int32_t> t(n);
  for (auto& v : t) v = static_cast<int32_t>(rng.below(vocab));
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Transformer training / prefill / decode benchmark"};
  std::string shape = "small", out_file;
  int threads = 2;
  int64_t batch = 8, seq = 512, train_steps = 3, prefill = 512, decode = 64, reps = 3;
  bool skip_train = false;
  app.add_option("--shape", shape, "small | llama125m")->capture_default_str();
  app.add_option("--threads", threads)->capture_default_str();
  app.add_option("--batch", batch)->capture_default_str();
  app.add_option("--seq", seq)->capture_default_str();
  app.add_option("--train-steps", train_steps, "Timed training steps")->capture_default_str();
  app.add_option("--prefill", prefill, "Prompt tokens for prefill")->capture_default_str();
  app.add_option("--decode", decode, "Decoded tokens")->capture_default_str();
  app.add_option("--reps", reps, "Prefill repetitions (best is reported)")->capture_default_str();
  app.add_flag("--skip-train", skip_train);
  app.add_option("--out", out_file, "Also write the JSON here");
  CLI11_PARSE(app, argc, argv);
  pf::set_num_threads(threads);

  auto model = pf::create_model(shape_config(shape), 1);
  const int64_t V = model->vocab_size();
  json res = {{"benchmark", "transformer"}, {"shape", shape}, {"threads", pf::num_threads()},
              {"params", model->num_params()}};
  const double gemm = pf::bench::gemm_gflops(4096, 1024, 384, 2.0);
  res["gemm_f32_gflops"] = gemm;
  std::fprintf(stderr, "%s: %.2fM params, f32 GEMM %.1f GFLOP/s\n", shape.c_str(),
               model->num_params() / 1e6, gemm);

  if (!skip_train) {
    std::vector<std::pair<std::string, pf::Var>> params;
    std::vector<pf::ParamKind> kinds;
    model->visit_params([&](const std::string& n, pf::Var& p, pf::ParamKind k) {
      params.emplace_back(n, p);
      kinds.push_back(k);
    });
    pf::AdamW adam(pf::AdamWConfig{}, params, kinds);
    auto step = [&](uint64_t s) {
      auto toks = random_tokens(batch * (seq + 1), V, s);
      std::vector<int32_t> in, tg;
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t t = 0; t < seq; ++t) {
          in.push_back(toks[b * (seq + 1) + t]);
          tg.push_back(toks[b * (seq + 1) + t + 1]);
        }
      for (auto& s : adam.slots()) s.param.zero_grad();
      pf::Tape tape;
      pf::TapeScope scope(tape);
      pf::Var loss = pf::cross_entropy(model->forward(in, batch, seq, {}), tg);
      tape.backward(loss);
      adam.step(1e-4);
    };
    step(0);  // warm-up: allocates gradients and optimizer buffers
    pf::Timer t;
    for (int64_t i = 0; i < train_steps; ++i) step(i + 1);
    const double sec = t.seconds();
    const double tps = batch * seq * train_steps / sec;
    // Training FLOPs = 3x forward (forward + backward), with causal attention.
    const double flops = 3.0 * model->flops_per_token(seq) * tps;
    res["train"] = {{"batch", batch}, {"seq", seq}, {"tokens_per_s", tps},
                    {"model_gflops", flops / 1e9}, {"fraction_of_gemm", flops / 1e9 / gemm}};
    std::fprintf(stderr, "train: %.0f tok/s, %.1f GFLOP/s = %.1f%% of GEMM\n", tps, flops / 1e9,
                 100 * flops / 1e9 / gemm);
  }

  {
    auto toks = random_tokens(prefill + decode, V, 99);
    auto session = model->new_session(prefill + decode + 1);
    session->forward(toks.data(), 16, false);  // warm-up
    session->reset();
    double pre = 1e30;
    for (int64_t r = 0; r < reps; ++r) {
      session->reset();
      pf::Timer tp;
      session->forward(toks.data(), prefill, false);
      pre = std::min(pre, tp.seconds());
    }
    pf::Timer t;
    for (int64_t i = 0; i < decode; ++i) session->forward(&toks[prefill + i], 1, false);
    const double dec = t.seconds();
    res["prefill"] = {{"tokens", prefill}, {"tokens_per_s", prefill / pre}};
    // Decode streams every weight once per token: report the memory rate that implies.
    const double weight_gbps = 4.0 * model->num_params() * decode / dec / 1e9;
    res["decode"] = {{"context", prefill}, {"tokens", decode},
                     {"ms_per_token", 1000 * dec / decode}, {"tokens_per_s", decode / dec},
                     {"weight_stream_gb_per_s", weight_gbps}};
    std::fprintf(stderr,
                 "prefill %ld: %.0f tok/s; decode: %.2f ms/token (%.1f tok/s, weights at %.1f GB/s)\n",
                 static_cast<long>(prefill), prefill / pre, 1000 * dec / decode, decode / dec,
                 weight_gbps);
  }
  std::printf("%s\n", res.dump(2).c_str());
  if (!out_file.empty()) std::ofstream(out_file) << res.dump(2) << "\n";
}
