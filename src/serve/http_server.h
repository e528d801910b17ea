// `postformer serve`'s HTTP side: OpenAI-compatible completion and chat routes (streamed as
// Server-Sent Events), sessions, models, health, Prometheus metrics and the chat page. It
// turns requests into jobs for the scheduler and waits on their channels; it never runs
// the model itself.
#pragma once
#include <httplib.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "data/tokenizer.h"
#include "models/core/decoder_lm.h"
#include "serve/api_params.h"
#include "serve/chat_template.h"
#include "serve/scheduler.h"
#include "serve/session_store.h"

namespace pf {

struct ServeOptions {
  std::string host = "127.0.0.1";  // loopback: reachable from this machine only
  int port = 8080;                 // 0 = any free port
  std::string api_key;             // "" = no authentication
  std::string model_name;          // reported by /v1/models
  size_t max_body_bytes = 1 << 20;
  int64_t max_prompt_tokens = 8192;
  RequestLimits limits;
  double request_timeout_s = 300;
  std::string session_dir;            // "" = sessions live in memory only
  int64_t max_state_memory = 1 << 30;  // parked session states before eviction (0 = no limit)
  SchedulerOptions sched;
};

class HttpServer {
 public:
  HttpServer(std::unique_ptr<LanguageModel> model, std::unique_ptr<Tokenizer> tok,
             std::optional<ModelChatTemplate> tmpl, ServeOptions opt);
  ~HttpServer();
  // Binds the listening socket; returns the port (the chosen one when opt.port is 0).
  int bind();
  // Serves until stop(); then finishes the jobs and saves the sessions (with a session dir).
  void run();
  void stop();
  SessionStore& sessions() { return *sessions_; }

 private:
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;
  // A route's handler wrapped with authentication (when `auth`), errors as JSON bodies with
  // their status, and the request counted under `route`.
  Handler guarded(std::string route, bool auth, Handler fn);
  void routes();
  void completion(const httplib::Request& req, httplib::Response& res, bool chat);
  void session_routes();
  std::string metrics_text();
  // Token ids for a request, and for session turns the state checked out (into job).
  void prepare_input(const CompletionParams& p, Job& job);
  bool authorized(const httplib::Request& req) const;
  void count(const std::string& route, int status);

  std::unique_ptr<LanguageModel> owner_;
  DecoderLM& model_;
  std::unique_ptr<Tokenizer> tok_;
  ChatTemplate tmpl_;
  std::string bos_, eos_;
  bool default_template_ = true;
  ServeOptions opt_;
  std::unique_ptr<SessionStore> sessions_;
  std::unique_ptr<Scheduler> scheduler_;
  httplib::Server http_;
  std::atomic<uint64_t> next_job_{1};
  std::mutex count_mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;  // (route, status) -> count
  std::atomic<int64_t> timeouts_{0}, rejected_{0}, disconnects_{0};
};

// The chat page served at "/" (src/serve/chat_page.html, embedded at build time).
const char* chat_page_html();

}  // namespace pf
