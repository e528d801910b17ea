// `postformer serve`: the HTTP server (see src/serve/). Flags, model loading, the port
// file for scripts, and a clean stop on SIGINT/SIGTERM (sessions saved first).
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "apps/commands.h"
#include "apps/weights_flag.h"
#include "base/checks.h"
#include "base/error.h"
#include "base/memory_stats.h"
#include "base/threads.h"
#include "data/tokenizer.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "serve/http_server.h"

namespace pf::cli {

namespace {
struct ServeArgs {
  std::string model_dir, port_file, max_state_memory = "1G", weights;
  ServeOptions opt;
  int threads = 0;
};

// "512M", "2G", "1048576": bytes.
int64_t parse_bytes(const std::string& flag, const std::string& s) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    fail(flag, " '", s, "' is not a size (e.g. 512M, 2G, 1048576)");
  }
  double mul = 1;
  const std::string unit = s.substr(used);
  if (unit == "K" || unit == "KB" || unit == "KiB") mul = 1024.0;
  else if (unit == "M" || unit == "MB" || unit == "MiB") mul = 1024.0 * 1024;
  else if (unit == "G" || unit == "GB" || unit == "GiB") mul = 1024.0 * 1024 * 1024;
  else PF_CHECK(unit.empty(), flag, " '", s, "': unknown unit '", unit, "' (use K, M or G)");
  PF_CHECK(std::isfinite(v) && v >= 0 && v * mul < 9e18, flag, " '", s, "' is out of range");
  return static_cast<int64_t>(v * mul);
}

// A port file may replace only an earlier port file (digits), never someone's document.
void check_port_file(const std::string& path) {
  if (!std::filesystem::exists(std::filesystem::symlink_status(path))) return;
  std::ifstream f(path);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  PF_CHECK(std::filesystem::is_regular_file(path) && !s.empty() && s.size() <= 5 &&
               s.find_first_not_of("0123456789") == std::string::npos,
           "--port-file ", path, " exists and is not a port file; give a new path");
}

void run_serve(ServeArgs& a) {
  set_num_threads(a.threads);
  ServeOptions& o = a.opt;
  check_range("--port", static_cast<int64_t>(o.port), 0, 65535);
  check_range("--max-sequences", o.sched.max_sequences, 1, 4096);
  check_range("--max-queue", o.sched.max_queue, 0, 100000);
  check_range("--batch-tokens", o.sched.batch_tokens, 1, 1 << 20);
  check_range("--max-prompt-tokens", o.max_prompt_tokens, 1, int64_t{1} << 40);
  check_range("--max-tokens", o.limits.max_tokens, 1, int64_t{1} << 40);
  check_range("--default-max-tokens", o.limits.default_max_tokens, 1, o.limits.max_tokens);
  check_range("--max-body-bytes", static_cast<int64_t>(o.max_body_bytes), 64, int64_t{1} << 32);
  check_range("--request-timeout", o.request_timeout_s, 0.0, 1e7, /*open_lo=*/true);
  check_range("--context", o.sched.capacity, 0, int64_t{1} << 40);
  o.max_state_memory = parse_bytes("--max-state-memory", a.max_state_memory);
  if (!a.port_file.empty()) check_port_file(a.port_file);
  if (o.api_key.empty())
    if (const char* k = std::getenv("POSTFORMER_API_KEY")) o.api_key = k;
  if (o.host != "127.0.0.1" && o.host != "localhost" && o.host != "::1" && o.api_key.empty())
    std::fprintf(stderr, "warning: listening on %s without --api-key: anyone who can reach it "
                         "can use it\n", o.host.c_str());

  auto model = load_model_with_weights(a.model_dir, a.weights);
  const std::string dir = resolve_checkpoint_dir(a.model_dir);
  auto tok = load_tokenizer(dir, model->vocab_size());
  auto tmpl = load_chat_template(dir);
  if (o.model_name.empty()) o.model_name = std::filesystem::path(dir).filename().string();
  const int64_t cap = o.sched.capacity > 0 ? o.sched.capacity
                                           : std::min<int64_t>(model->max_context(), 4096);
  const int64_t per_slot = model->recurrent() ? model->state_bytes(1) : model->state_bytes(cap);
  const int64_t need = checked_mul(per_slot, o.sched.max_sequences, "--max-sequences x state");
  const int64_t ram = physical_memory_bytes();
  PF_CHECK(ram == 0 || need <= ram / 2, o.sched.max_sequences, " slots of ", per_slot >> 20,
           " MiB of state need more than half of this machine's memory; lower --max-sequences "
           "or --context");

  // Signals go to one thread that stops the server; the others never see them.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client that left is a failed write, not the end of us

  const std::string arch = model->arch();
  const int64_t params = model->num_params();
  HttpServer server(std::move(model), std::move(tok), std::move(tmpl), o);
  const int port = server.bind();
  if (!a.port_file.empty()) write_file_atomic(a.port_file, std::to_string(port) + "\n");
  std::fprintf(stderr,
               "serving %s (%.1fM parameters) at http://%s:%d/  %ld slots, context %ld, %s\n",
               arch.c_str(), params / 1e6, o.host.c_str(), port,
               static_cast<long>(o.sched.max_sequences), static_cast<long>(cap),
               o.session_dir.empty() ? "sessions in memory"
                                     : ("sessions in " + o.session_dir).c_str());
  std::thread stopper([&] {
    int sig = 0;
    sigwait(&sigs, &sig);
    std::fprintf(stderr, "serve: signal %d, stopping%s\n", sig,
                 o.session_dir.empty() ? "" : " (saving sessions)");
    server.stop();
  });
  server.run();
  // The server may also stop without a signal (the socket failed): wake the stopper.
  pthread_kill(stopper.native_handle(), SIGTERM);
  stopper.join();
  std::fprintf(stderr, "serve: stopped\n");
}
}  // namespace

void add_serve(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  ServeOptions& o = a->opt;
  auto* cmd = app.add_subcommand(
      "serve", "Serve a model over HTTP: OpenAI-style completions and chat, sessions, a chat page");
  cmd->add_option("--model", a->model_dir, "Model directory (config.json + model.safetensors)")
      ->required();
  cmd->add_option("--host", o.host, "Address to listen on (loopback by default)")
      ->capture_default_str();
  cmd->add_option("--port", o.port, "Port (0 = any free one; see --port-file)")
      ->capture_default_str();
  cmd->add_option("--port-file", a->port_file, "Write the port here once listening");
  cmd->add_option("--api-key", o.api_key,
                  "Require 'Authorization: Bearer KEY' (or set POSTFORMER_API_KEY)");
  cmd->add_option("--model-name", o.model_name, "Name in /v1/models (default: the directory's)");
  cmd->add_option("--context", o.sched.capacity,
                  "Tokens a sequence may hold (KV cache; 0 = min(model, 4096); recurrent: no limit)");
  cmd->add_option("--max-sequences", o.sched.max_sequences,
                  "Sequences decoded together (slots); more requests wait in the queue")
      ->capture_default_str();
  cmd->add_option("--max-queue", o.sched.max_queue,
                  "Requests that may wait for a slot; beyond it the answer is 503")
      ->capture_default_str();
  cmd->add_option("--batch-tokens", o.sched.batch_tokens,
                  "Prompt tokens read per batched step, beside the decoding rows")
      ->capture_default_str();
  cmd->add_option("--max-body-bytes", o.max_body_bytes, "Largest request body (413 beyond)")
      ->capture_default_str();
  cmd->add_option("--max-prompt-tokens", o.max_prompt_tokens, "Longest prompt or turn (400 beyond)")
      ->capture_default_str();
  cmd->add_option("--max-tokens", o.limits.max_tokens, "Largest max_tokens a request may ask")
      ->capture_default_str();
  cmd->add_option("--default-max-tokens", o.limits.default_max_tokens,
                  "max_tokens when a request gives none")
      ->capture_default_str();
  cmd->add_option("--request-timeout", o.request_timeout_s,
                  "Seconds a request may take, queue included (504, or finish_reason timeout)")
      ->capture_default_str();
  cmd->add_option("--session-dir", o.session_dir,
                  "Save sessions here (on eviction, on request, at exit) and find them again");
  cmd->add_option("--max-state-memory", a->max_state_memory,
                  "Parked session state kept in memory before the least recently used is "
                  "evicted (0 = no limit)")
      ->capture_default_str();
  cmd->add_option("--threads", a->threads, "Worker threads (0 = all cores)");
  add_weights_flag(cmd, a->weights);
  cmd->callback([a] { run_serve(*a); });
}

}  // namespace pf::cli
