// Language-model throughput for any registered architecture, several models per run so
// each is reported against the first (the baseline) on the same machine state:
// training tokens/s (+ model FLOPs as a fraction of the f32 GEMM rate measured in the
// same run) and peak training memory, prefill tokens/s, decode ms/token.
// Usage: bench_lm --models transformer-small,mamba-small [--train-seq 512] [--out FILE]
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "autograd/ops.h"
#include "base/memory_stats.h"
#include "base/rng.h"
#include "base/threads.h"
#include "bench/bench_common.h"
#include "bench/presets.h"
#include "models/core/decoder_lm.h"
#include "models/lm.h"
#include "train/adamw.h"

using nlohmann::json;

namespace {

using pf::bench::preset;
using pf::bench::random_tokens;

struct Args {
  int64_t batch = 8, train_seq = 512, train_steps = 3, memory_seq = 0, prefill = 512, decode = 64,
          reps = 3;
  std::vector<int64_t> prefill_lengths, decode_contexts, concurrent;
  int64_t memory_batch = 1;
  int64_t latents = 512;  // Perceiver AR presets: latents in a window of the longest length
  bool skip_train = false, skip_infer = false, recompute = false;
};

// Aggregate decode tokens/s with N sequences advanced together: each of N slots holds a
// prompt of a.prefill tokens, then every call decodes one token of each (one batch of N
// rows, so the weights stream once per call, not N times).
json bench_concurrent(pf::LanguageModel& model, const Args& a) {
  auto* lm = dynamic_cast<pf::DecoderLM*>(&model);
  if (!lm) throw std::runtime_error("--concurrent needs a DecoderLM model");
  json out = json::array();
  double single = 0;
  for (int64_t N : a.concurrent) {
    const int64_t V = model.vocab_size();
    auto pool = lm->new_pool(N, a.prefill + a.decode + 2);
    auto prompt = random_tokens(a.prefill, V, 5);
    for (int64_t s = 0; s < N; ++s)
      lm->forward_cached(prompt.data(), pf::SeqBatch{{s, 0, a.prefill}}, *pool);
    // Snapshot so every repetition decodes from the same positions.
    std::vector<pf::NamedTensors> snap;
    for (int64_t s = 0; s < N; ++s) {
      snap.emplace_back();
      for (auto& [n, t] : pool->save(s)) snap.back().emplace_back(n, t.clone());
    }
    auto next = random_tokens(N * a.decode, V, 6);
    double best = 1e30;
    for (int64_t rep = 0; rep < a.reps; ++rep) {
      for (int64_t s = 0; s < N; ++s) pool->load(s, snap[s], a.prefill);
      pf::Timer t;
      for (int64_t i = 0; i < a.decode; ++i) {
        pf::SeqBatch b;
        for (int64_t s = 0; s < N; ++s) b.add(s, a.prefill + i, 1);
        lm->forward_cached(next.data() + i * N, b, *pool);
      }
      best = std::min(best, t.seconds());
    }
    const double tps = N * a.decode / best;
    if (N == a.concurrent.front()) single = tps / N;
    out.push_back({{"sequences", N},
                   {"tokens_per_s", tps},
                   {"ms_per_step", 1000 * best / a.decode},
                   {"vs_one_sequence", single > 0 ? tps / single : 0.0}});
    std::fprintf(stderr, "  %ld sequences decoding together: %.0f tok/s (%.2fx one sequence)\n",
                 static_cast<long>(N), tps, single > 0 ? tps / single : 0.0);
  }
  return out;
}

json bench_one(const std::string& name, const Args& a, double gemm) {
  int64_t window = std::max(a.train_seq, a.memory_seq);
  auto model = pf::create_model(preset(name, window, a.latents), 1);
  const int64_t V = model->vocab_size();
  json r = {{"model", name},
            {"arch", model->arch()},
            {"params", model->num_params()},
            {"recompute", a.recompute}};
  std::fprintf(stderr, "%s (%s): %.2fM params\n", name.c_str(), model->arch().c_str(),
               model->num_params() / 1e6);
  std::vector<std::pair<std::string, pf::Var>> params;
  std::vector<pf::ParamKind> kinds;
  model->visit_params([&](const std::string& n, pf::Var& p, pf::ParamKind k) {
    params.emplace_back(n, p);
    kinds.push_back(k);
  });
  auto train_step = [&](pf::AdamW& adam, int64_t B, int64_t T, uint64_t s) {
    auto toks = random_tokens(B * (T + 1), V, s);
    std::vector<int32_t> in, tg;
    const int64_t rows = model->loss_rows(T);  // Perceiver AR: the latents only
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) {
        in.push_back(toks[b * (T + 1) + t]);
        if (t >= T - rows) tg.push_back(toks[b * (T + 1) + t + 1]);
      }
    for (auto& sl : adam.slots()) sl.param.zero_grad();
    pf::Tape tape;
    pf::TapeScope scope(tape);
    pf::ForwardOptions fo;
    fo.recompute = a.recompute;
    tape.backward(pf::cross_entropy(model->forward(in, B, T, fo), tg));
    adam.step(1e-4);
  };
  if (!a.skip_train) {
    pf::AdamW adam(pf::AdamWConfig{}, params, kinds);
    train_step(adam, a.batch, a.train_seq, 0);  // warm-up: allocates grads and moments
    pf::Timer t;
    for (int64_t i = 0; i < a.train_steps; ++i) train_step(adam, a.batch, a.train_seq, i + 1);
    // Tokens with a loss: every position of a decoder, the latents of Perceiver AR.
    const int64_t loss_rows = model->loss_rows(a.train_seq);
    const double tps = a.batch * loss_rows * a.train_steps / t.seconds();
    const double input_tps = a.batch * a.train_seq * a.train_steps / t.seconds();
    r["train"] = {{"batch", a.batch},
                  {"seq", a.train_seq},
                  {"loss_tokens_per_seq", loss_rows},
                  {"tokens_per_s", tps},
                  {"input_tokens_per_s", input_tps}};
    if (loss_rows == a.train_seq) {
      // Training FLOPs = 3 x forward (forward + backward). (flops_per_token is a decoder's
      // per-position cost; Perceiver AR's training cost is not that, so it is left out.)
      const double flops = 3.0 * model->flops_per_token(a.train_seq) * input_tps;
      r["train"]["model_gflops"] = flops / 1e9;
      r["train"]["fraction_of_gemm"] = flops / 1e9 / gemm;
      std::fprintf(stderr, "  train seq %ld: %.0f tok/s, %.1f GFLOP/s = %.1f%% of GEMM\n",
                   static_cast<long>(a.train_seq), tps, flops / 1e9, 100 * flops / 1e9 / gemm);
    } else {
      std::fprintf(stderr, "  train seq %ld: %.0f tok/s with a loss (%ld of %ld per sequence)\n",
                   static_cast<long>(a.train_seq), tps, static_cast<long>(loss_rows),
                   static_cast<long>(a.train_seq));
    }
  }
  if (a.memory_seq > 0) {
    // Peak memory of one training step (fresh optimizer state included). Run one model
    // per process for this: the allocator keeps freed memory resident.
    pf::AdamW adam(pf::AdamWConfig{}, params, kinds);
    pf::reset_peak_rss();
    pf::Timer t;
    train_step(adam, a.memory_batch, a.memory_seq, 99);
    const long kib = pf::peak_rss_kib();
    r["train_memory"] = {{"batch", a.memory_batch},
                         {"seq", a.memory_seq},
                         {"peak_rss_mib", kib / 1024.0},
                         {"step_seconds", t.seconds()}};
    std::fprintf(stderr, "  train step at seq %ld, batch %ld: peak RSS %.0f MiB\n",
                 static_cast<long>(a.memory_seq), static_cast<long>(a.memory_batch), kib / 1024.0);
  }
  if (!a.skip_infer) {
    std::vector<int64_t> lengths =
        a.prefill_lengths.empty() ? std::vector<int64_t>{a.prefill} : a.prefill_lengths;
    for (int64_t L : lengths) {
      auto toks = random_tokens(L, V, 99);
      auto session = model->new_session(L + a.decode + 1);
      session->forward(toks.data(), std::min<int64_t>(16, L), false);  // warm-up
      double best = 1e30;
      for (int64_t rep = 0; rep < a.reps; ++rep) {
        session->reset();
        pf::Timer tp;
        session->forward(toks.data(), L, false);
        best = std::min(best, tp.seconds());
      }
      r["prefill"].push_back({{"tokens", L}, {"tokens_per_s", L / best}});
      std::fprintf(stderr, "  prefill %ld: %.0f tok/s\n", static_cast<long>(L), L / best);
    }
    {
      // Decode speed after a context of ctx tokens: flat for recurrent models, growing
      // with the KV cache for attention. Repetitions cycle through all contexts and the
      // best per context is kept, so machine noise over time does not pose as a trend.
      struct Ctx {
        int64_t ctx;
        std::vector<int32_t> toks;
        std::unique_ptr<pf::InferenceSession> session;
        std::vector<std::pair<std::string, pf::Tensor>> snapshot;
        double best_ms = 1e30;
      };
      std::vector<Ctx> cs;
      for (int64_t ctx : a.decode_contexts) {
        Ctx c{ctx, random_tokens(ctx + a.decode, V, 8), model->new_session(ctx + a.decode + 1), {}};
        c.session->forward(c.toks.data(), ctx, false);
        for (auto& [n, t] : c.session->export_state()) c.snapshot.emplace_back(n, t.clone());
        cs.push_back(std::move(c));
      }
      for (int64_t rep = 0; rep < a.reps; ++rep)
        for (auto& c : cs) {
          c.session->import_state(c.snapshot, c.ctx);
          pf::Timer t;
          for (int64_t i = 0; i < a.decode; ++i) c.session->forward(&c.toks[c.ctx + i], 1, false);
          c.best_ms = std::min(c.best_ms, 1000 * t.seconds() / a.decode);
        }
      for (auto& c : cs) {
        r["decode_at_context"].push_back({{"context", c.ctx}, {"ms_per_token", c.best_ms}});
        std::fprintf(stderr, "  decode at context %ld: %.3f ms/token\n", static_cast<long>(c.ctx),
                     c.best_ms);
      }
    }
    auto toks = random_tokens(a.prefill + a.decode, V, 7);
    auto session = model->new_session(a.prefill + a.decode + 1);
    session->forward(toks.data(), a.prefill, false);
    pf::Timer t;
    for (int64_t i = 0; i < a.decode; ++i) session->forward(&toks[a.prefill + i], 1, false);
    const double dec = t.seconds();
    // Decode streams every weight once per token: the memory rate that implies.
    const double gbps = 4.0 * model->num_params() * a.decode / dec / 1e9;
    r["decode"] = {{"context", a.prefill},
                   {"tokens", a.decode},
                   {"ms_per_token", 1000 * dec / a.decode},
                   {"tokens_per_s", a.decode / dec},
                   {"weight_stream_gb_per_s", gbps}};
    std::fprintf(stderr, "  decode after %ld: %.2f ms/token (%.1f tok/s, weights at %.1f GB/s)\n",
                 static_cast<long>(a.prefill), 1000 * dec / a.decode, a.decode / dec, gbps);
  }
  if (!a.concurrent.empty()) r["concurrent_decode"] = bench_concurrent(*model, a);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Language-model training / prefill / decode benchmark (JSON)"};
  std::string models = "transformer-small", out_file;
  int threads = 2;
  Args a;
  app.add_option("--models", models, "Comma-separated presets; the first is the baseline")
      ->capture_default_str();
  app.add_option("--threads", threads)->capture_default_str();
  app.add_option("--batch", a.batch)->capture_default_str();
  app.add_option("--train-seq", a.train_seq)->capture_default_str();
  app.add_option("--train-steps", a.train_steps, "Timed training steps")->capture_default_str();
  app.add_option("--memory-seq", a.memory_seq,
                 "Also measure peak memory of a batch-1 step (0 = skip)");
  app.add_option("--prefill", a.prefill, "Prompt tokens before decoding")->capture_default_str();
  app.add_option("--prefill-lengths", a.prefill_lengths,
                 "Prefill lengths to time (default: --prefill)")
      ->delimiter(',');
  app.add_option("--decode", a.decode, "Decoded tokens")->capture_default_str();
  app.add_option("--decode-contexts", a.decode_contexts, "Also time decoding after these contexts")
      ->delimiter(',');
  app.add_option("--concurrent", a.concurrent,
                 "Aggregate decode tokens/s with these numbers of sequences at once "
                 "(e.g. 1,4,16,64; the first is the reference)")
      ->delimiter(',');
  app.add_option("--memory-batch", a.memory_batch, "Batch of the --memory-seq step")
      ->capture_default_str();
  app.add_option("--latents", a.latents,
                 "Perceiver AR presets: latents at the end of the window (the window is the "
                 "longest of --train-seq and --memory-seq)")
      ->capture_default_str();
  app.add_option("--reps", a.reps, "Prefill repetitions (best is reported)")->capture_default_str();
  app.add_flag("--recompute", a.recompute, "Train with per-block activation recomputation");
  app.add_flag("--skip-train", a.skip_train);
  app.add_flag("--skip-infer", a.skip_infer);
  app.add_option("--out", out_file, "Also write the JSON here");
  CLI11_PARSE(app, argc, argv);
  pf::set_num_threads(threads);

  const double gemm = pf::bench::gemm_gflops(4096, 1024, 384, 2.0);
  std::fprintf(stderr, "f32 GEMM %.1f GFLOP/s on %d threads\n", gemm, pf::num_threads());
  json res = {{"benchmark", "lm"}, {"threads", pf::num_threads()}, {"gemm_f32_gflops", gemm}};
  std::stringstream ss(models);
  std::string name;
  while (std::getline(ss, name, ',')) res["models"].push_back(bench_one(name, a, gemm));
  // Ratios against the baseline (the first model) measured in this same run.
  const json& base = res["models"][0];
  for (auto& m : res["models"]) {
    json ratio;
    if (m.contains("train") && base.contains("train"))
      ratio["train_tokens_per_s"] =
          m["train"]["tokens_per_s"].get<double>() / base["train"]["tokens_per_s"].get<double>();
    if (m.contains("train_memory") && base.contains("train_memory"))
      ratio["train_peak_memory"] = m["train_memory"]["peak_rss_mib"].get<double>() /
                                   base["train_memory"]["peak_rss_mib"].get<double>();
    if (m.contains("decode") && base.contains("decode"))
      ratio["decode_tokens_per_s"] =
          m["decode"]["tokens_per_s"].get<double>() / base["decode"]["tokens_per_s"].get<double>();
    m["vs_baseline"] = ratio;
  }
  std::printf("%s\n", res.dump(2).c_str());
  if (!out_file.empty()) std::ofstream(out_file) << res.dump(2) << "\n";
}
