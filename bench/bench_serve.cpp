// Serving benchmark over real HTTP on loopback: aggregate decode tokens/s and p50/p99
// inter-token latency at 1, 8 and 32 concurrent streams, and the time to first token of a
// chat turn against the number of earlier turns in its session. A randomly initialised
// byte-level model (the weights do not change the cost). JSON on stdout.
// Usage: bench_serve [--arch mamba] [--d-model 384] [--layers 10] [--tokens 128] [--turns 10]
#include <httplib.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/threads.h"
#include "infer/generate.h"
#include "io/checkpoint.h"
#include "serve/http_server.h"

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

struct StreamTimes {
  std::vector<double> arrivals;  // seconds since the request was sent, one per token event
  int64_t tokens = 0;
};

StreamTimes stream(int port, const json& body) {
  StreamTimes st;
  const auto t0 = Clock::now();
  std::string buf;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
    buf.append(d, n);
    for (size_t e; (e = buf.find("\n\n")) != std::string::npos;) {
      const std::string ev = buf.substr(0, e);
      buf.erase(0, e + 2);
      if (ev.rfind("data: {", 0) != 0) continue;
      const json j = json::parse(ev.substr(6));
      const auto& c = j["choices"][0];
      if (c.contains("token_ids") && !c["token_ids"].empty()) {
        st.tokens += static_cast<int64_t>(c["token_ids"].size());
        st.arrivals.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
      }
    }
    return true;
  };
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(600);
  cli.send(req);
  return st;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * (v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_serve"};
  std::string arch = "mamba";
  int64_t d = 384, layers = 10, tokens = 128, turns = 10;
  int threads = 0;
  app.add_option("--arch", arch);
  app.add_option("--d-model", d);
  app.add_option("--layers", layers);
  app.add_option("--tokens", tokens, "tokens per stream");
  app.add_option("--turns", turns, "chat turns in the session test");
  app.add_option("--threads", threads);
  CLI11_PARSE(app, argc, argv);
  try {
    pf::set_num_threads(threads);
    json cfg = {{"model_type", arch}, {"hidden_size", d}, {"num_hidden_layers", layers},
                {"vocab_size", 256}, {"tie_word_embeddings", true}};
    if (arch == "mamba") cfg["state_size"] = 16;
    if (arch == "llama")
      cfg.update({{"intermediate_size", 4 * d}, {"num_attention_heads", d / 64},
                  {"num_key_value_heads", d / 64}, {"max_position_embeddings", 8192}});
    const std::string dir = std::filesystem::temp_directory_path() / "pf_bench_serve_model";
    {
      auto m = pf::create_model(cfg, 1);
      pf::save_model(dir, *m);
    }
    auto model = pf::load_model(dir);
    const int64_t params = model->num_params();
    // The engine alone, same model, same run: one sequence through `generate`.
    double engine_tps = 0;
    {
      auto s = model->new_session(4096);
      pf::GenerateOptions g;
      g.max_new = tokens;
      g.seed = 1;
      g.valid_vocab = model->vocab_size();
      const std::vector<int32_t> prompt = {'S', 't', 'r', 'e', 'a', 'm'};
      pf::generate(*s, prompt, g, nullptr);  // warm-up
      auto s2 = model->new_session(4096);
      const auto t0 = Clock::now();
      const auto out = pf::generate(*s2, prompt, g, nullptr);
      engine_tps = out.size() / std::chrono::duration<double>(Clock::now() - t0).count();
      std::fprintf(stderr, "engine, one sequence (generate): %.0f tokens/s\n", engine_tps);
    }
    auto tok = pf::load_tokenizer(dir, model->vocab_size());
    pf::ServeOptions opt;
    opt.sched.max_sequences = 32;
    opt.port = 0;
    pf::HttpServer server(std::move(model), std::move(tok), std::nullopt, opt);
    const int port = server.bind();
    std::thread th([&] { server.run(); });

    json out = {{"bench", "serve"}, {"arch", arch}, {"params", params},
                {"tokens_per_stream", tokens}, {"hardware_threads", std::thread::hardware_concurrency()},
                {"engine_generate_tokens_per_s", engine_tps}};
    json rows = json::array();
    double single = 0;
    for (int streams : {1, 8, 32}) {
      const auto t0 = Clock::now();
      std::vector<std::future<StreamTimes>> f;
      for (int i = 0; i < streams; ++i)
        f.push_back(std::async(std::launch::async, [&, i] {
          return stream(port, {{"prompt", "Stream " + std::to_string(i)}, {"max_tokens", tokens},
                               {"stream", true}, {"seed", i}, {"return_token_ids", true}});
        }));
      std::vector<double> gaps;
      int64_t total = 0;
      for (auto& x : f) {
        const StreamTimes st = x.get();
        total += st.tokens;
        for (size_t k = 1; k < st.arrivals.size(); ++k)
          gaps.push_back(st.arrivals[k] - st.arrivals[k - 1]);
      }
      const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
      const double tps = total / secs;
      if (streams == 1) single = tps;
      rows.push_back({{"streams", streams}, {"tokens", total}, {"seconds", secs},
                      {"tokens_per_s", tps}, {"speedup_vs_1", single > 0 ? tps / single : 1.0},
                      {"inter_token_p50_ms", 1e3 * percentile(gaps, 0.5)},
                      {"inter_token_p99_ms", 1e3 * percentile(gaps, 0.99)}});
      std::fprintf(stderr, "%2d streams: %.0f tokens/s (%.2fx one stream)\n", streams, tps,
                   single > 0 ? tps / single : 1.0);
    }
    out["streams"] = rows;

    // Chat turns in a session: each turn reads only its new message. Three conversations,
    // the median per turn (one request's time on a shared 2-core machine is noisy).
    httplib::Client cli("127.0.0.1", port);
    constexpr int kConversations = 3;
    std::vector<std::vector<double>> first_ms(static_cast<size_t>(turns));
    std::vector<int64_t> positions(static_cast<size_t>(turns), 0);
    for (int conv = 0; conv < kConversations; ++conv) {
      const std::string sid = "bench" + std::to_string(conv);
      cli.Post("/v1/sessions", json{{"id", sid}}.dump(), "application/json");
      for (int64_t t = 1; t <= turns; ++t) {
        const json body = {{"session", sid},
                           {"messages", {{{"role", "user"},
                                          {"content", "Tell me more about the line number " +
                                                          std::to_string(t) + "."}}}},
                           {"max_tokens", 32}, {"stream", true}, {"seed", t}};
        // Time to the first streamed content event.
        const auto t0 = Clock::now();
        double first = -1;
        httplib::Request req;
        req.method = "POST";
        req.path = "/v1/chat/completions";
        req.body = body.dump();
        req.set_header("Content-Type", "application/json");
        req.content_receiver = [&](const char* dd, size_t n, uint64_t, uint64_t) {
          if (first < 0 && std::string(dd, n).find("\"content\"") != std::string::npos)
            first = std::chrono::duration<double>(Clock::now() - t0).count();
          return true;
        };
        cli.send(req);
        auto info = cli.Get(("/v1/sessions/" + sid).c_str());
        if (info) positions[t - 1] = json::parse(info->body)["position"];
        first_ms[t - 1].push_back(1e3 * first);
      }
    }
    json ttft = json::array();
    for (int64_t t = 1; t <= turns; ++t) {
      const double med = percentile(first_ms[t - 1], 0.5);
      ttft.push_back({{"turn", t}, {"ttft_ms_median", med}, {"ttft_ms", first_ms[t - 1]},
                      {"session_position", positions[t - 1]}});
      std::fprintf(stderr, "turn %2ld: first token after %.1f ms, median of %d (session at %ld tokens)\n",
                   static_cast<long>(t), med, kConversations, static_cast<long>(positions[t - 1]));
    }
    const double t1 = percentile(first_ms.front(), 0.5), tn = percentile(first_ms.back(), 0.5);
    out["ttft_last_vs_first_turn"] = t1 > 0 ? tn / t1 : 0.0;
    out["chat_turns"] = ttft;
    server.stop();
    th.join();
    std::filesystem::remove_all(dir);
    std::printf("%s\n", out.dump(2).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
