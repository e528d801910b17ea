#include "serve/http_server.h"

#include <sys/socket.h>

#include <filesystem>

#include "infer/state_file.h"
#include "serve/http_json.h"
#include "serve/serve_error.h"

namespace pf {

namespace {
constexpr int kListenBacklog = 512;

DecoderLM& as_decoder(LanguageModel& m) {
  auto* d = dynamic_cast<DecoderLM*>(&m);
  PF_CHECK(d, "serve runs decoder stacks (transformer, mamba, mamba2, retnet, hybrid); '",
           m.arch(), "' is not one yet");
  return *d;
}

// Constant time in the key's length, so the comparison does not leak a matching prefix.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned diff = a.size() != b.size();
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ (i < b.size() ? b[i] : 0);
  return diff == 0;
}
}  // namespace

HttpServer::HttpServer(std::unique_ptr<LanguageModel> model, std::unique_ptr<Tokenizer> tok,
                       std::optional<ModelChatTemplate> tmpl, ServeOptions opt)
    : owner_(std::move(model)), model_(as_decoder(*owner_)), tok_(std::move(tok)),
      tmpl_(tmpl ? tmpl->tmpl : ChatTemplate::plain_default()), opt_(std::move(opt)) {
  if (tmpl) {
    bos_ = tmpl->bos_token;
    eos_ = tmpl->eos_token;
    default_template_ = false;
  }
  if (opt_.model_name.empty()) opt_.model_name = model_.arch();
  if (opt_.sched.capacity <= 0) opt_.sched.capacity = std::min<int64_t>(model_.max_context(), 4096);
  PF_CHECK(opt_.sched.capacity <= model_.max_context(), "--context ", opt_.sched.capacity,
           " exceeds the model's ", model_.max_context(), " positions");
  sessions_ = std::make_unique<SessionStore>(model_, weights_fingerprint(model_), opt_.session_dir,
                                             opt_.max_state_memory);
  scheduler_ = std::make_unique<Scheduler>(model_, *tok_, *sessions_, opt_.sched);
  // One thread per open connection: every stream, every queued request, and some to spare.
  const size_t threads = static_cast<size_t>(opt_.sched.max_sequences + opt_.sched.max_queue + 16);
  http_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http_.set_payload_max_length(opt_.max_body_bytes);
  http_.set_keep_alive_timeout(5);
  http_.set_read_timeout(30);
  routes();
  session_routes();
}

HttpServer::~HttpServer() { stop(); }

bool HttpServer::authorized(const httplib::Request& req) const {
  if (opt_.api_key.empty()) return true;
  const std::string h = req.get_header_value("Authorization");
  return h.rfind("Bearer ", 0) == 0 && same_secret(h.substr(7), opt_.api_key);
}

void HttpServer::count(const std::string& route, int status) {
  std::lock_guard<std::mutex> lock(count_mu_);
  ++requests_[{route, status}];
}

int HttpServer::bind() {
  // httplib listens with a backlog of 5: a burst of clients (32 streams opening at once)
  // overflows it and some connections are dropped. Listening again on the same socket
  // raises the backlog (Linux keeps the bound socket, changing only the queue length).
  int fd = -1;
  http_.set_socket_options([&fd](socket_t sock) {
    fd = sock;
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  const int port = opt_.port == 0 ? http_.bind_to_any_port(opt_.host)
                                  : (http_.bind_to_port(opt_.host, opt_.port) ? opt_.port : -1);
  PF_CHECK(port > 0, "cannot listen on ", opt_.host, ":", opt_.port,
           " (in use, or not an address of this machine)");
  if (fd >= 0) ::listen(fd, kListenBacklog);
  return port;
}

void HttpServer::run() {
  http_.listen_after_bind();
  scheduler_->stop();
  sessions_->save_all();
}

void HttpServer::stop() {
  http_.stop();
  if (scheduler_) scheduler_->stop();
}

HttpServer::Handler HttpServer::guarded(std::string route, bool auth, Handler fn) {
  return [this, route = std::move(route), auth, fn = std::move(fn)](const httplib::Request& req,
                                                                    httplib::Response& res) {
    try {
      if (auth && !authorized(req))
        http_fail(401, "missing or wrong API key: send 'Authorization: Bearer <key>'");
      fn(req, res);
    } catch (const HttpError& e) {
      send_error(res, e.status(), e.type(), e.what());
    } catch (const std::exception& e) {
      send_error(res, 500, "server_error", e.what());
    }
    count(route, res.status);
  };
}

void HttpServer::routes() {
  using httplib::Request;
  using httplib::Response;
  auto guard = [this](std::string route, bool auth, Handler fn) {
    return guarded(std::move(route), auth, std::move(fn));
  };
  http_.Get("/", guard("/", false, [](const Request&, Response& res) {
    res.set_content(chat_page_html(), "text/html; charset=utf-8");
  }));
  http_.Get("/health", guard("/health", false, [this](const Request&, Response& res) {
    const SchedulerStats s = scheduler_->stats();
    send_json(res, 200, {{"status", "ok"}, {"active_sequences", s.active},
                         {"queue_depth", s.queue_depth}});
  }));
  http_.Get("/metrics", guard("/metrics", true, [this](const Request&, Response& res) {
    res.set_content(metrics_text(), "text/plain; version=0.0.4");
  }));
  http_.Get("/v1/models", guard("/v1/models", true, [this](const Request&, Response& res) {
    send_json(res, 200,
              {{"object", "list"},
               {"data", {{{"id", opt_.model_name},
                          {"object", "model"},
                          {"owned_by", "postformer"},
                          {"arch", model_.arch()},
                          {"context", scheduler_->capacity()},
                          {"vocab_size", model_.vocab_size()}}}}});
  }));
  http_.Post("/v1/completions", guard("/v1/completions", true, [this](const Request& q, Response& r) {
    completion(q, r, false);
  }));
  http_.Post("/v1/chat/completions",
             guard("/v1/chat/completions", true,
                   [this](const Request& q, Response& r) { completion(q, r, true); }));
  // Unknown routes and httplib's own refusals (413 for a body over the limit) as JSON too.
  http_.set_error_handler([this](const Request& req, Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 413)
      send_error(res, 413, "invalid_request_error",
                 "the request body exceeds --max-body-bytes " + std::to_string(opt_.max_body_bytes));
    else if (res.status == 404)
      send_error(res, 404, "not_found_error", "no route " + req.method + " " + req.path);
    else
      send_error(res, res.status, "invalid_request_error", "bad request");
    count("other", res.status);
  });
}

void HttpServer::session_routes() {
  using httplib::Request;
  using httplib::Response;
  auto guard = [this](std::string route, Handler fn) {
    return guarded(std::move(route), true, std::move(fn));
  };
  // An optional body {"id": "name"}.
  auto wanted_id = [](const Request& req) {
    if (req.body.empty()) return std::string();
    const nlohmann::json j = parse_json_body(req.body);
    auto it = j.find("id");
    if (it == j.end() || it->is_null()) return std::string();
    if (!it->is_string()) http_fail(400, "'id' must be a string");
    return it->get<std::string>();
  };
  http_.Post("/v1/sessions", guard("/v1/sessions", [this, wanted_id](const Request& q, Response& r) {
    send_json(r, 201, session_json(sessions_->create(wanted_id(q))));
  }));
  http_.Get("/v1/sessions", guard("/v1/sessions", [this](const Request&, Response& r) {
    nlohmann::json data = nlohmann::json::array();
    for (const SessionInfo& s : sessions_->list()) data.push_back(session_json(s));
    send_json(r, 200, {{"object", "list"}, {"data", data}});
  }));
  http_.Get(R"(/v1/sessions/([^/]+))",
            guard("/v1/sessions/:id", [this](const Request& q, Response& r) {
              send_json(r, 200, session_json(sessions_->info(q.matches[1])));
            }));
  http_.Delete(R"(/v1/sessions/([^/]+))",
               guard("/v1/sessions/:id", [this](const Request& q, Response& r) {
                 sessions_->remove(q.matches[1]);
                 send_json(r, 200, {{"id", std::string(q.matches[1])}, {"deleted", true}});
               }));
  http_.Post(R"(/v1/sessions/([^/]+)/fork)",
             guard("/v1/sessions/:id/fork", [this, wanted_id](const Request& q, Response& r) {
               send_json(r, 201, session_json(sessions_->fork(q.matches[1], wanted_id(q))));
             }));
  http_.Post(R"(/v1/sessions/([^/]+)/save)",
             guard("/v1/sessions/:id/save", [this](const Request& q, Response& r) {
               const std::string path = sessions_->save(q.matches[1]);
               send_json(r, 200, {{"id", std::string(q.matches[1])}, {"path", path}});
             }));
}

}  // namespace pf
