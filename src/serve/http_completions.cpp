// The completion and chat routes: request -> tokens -> job; then the job's events as one
// JSON response or as Server-Sent Events.
#include <ctime>

#include "serve/http_json.h"
#include "serve/http_server.h"
#include "serve/serve_error.h"
#include "serve/text_stream.h"

namespace pf {

namespace {
// The default template's turns start with "User:"; the model is stopped before writing one.
constexpr const char* kDefaultTurnStop = "\nUser:";

nlohmann::json choice_json(bool chat, const std::string& text, const std::vector<int32_t>& ids,
                           const nlohmann::json& finish, bool with_ids, bool first, bool stream) {
  nlohmann::json c = {{"index", 0}, {"finish_reason", finish}};
  if (!chat) {
    c["text"] = text;
  } else if (stream) {
    nlohmann::json delta = nlohmann::json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty()) delta["content"] = text;
    c["delta"] = delta;
  } else {
    c["message"] = {{"role", "assistant"}, {"content", text}};
  }
  if (with_ids) c["token_ids"] = ids;
  return c;
}
}  // namespace

void HttpServer::prepare_input(const CompletionParams& p, Job& job) {
  const bool in_session = !p.session.empty();
  if (in_session) job.session = sessions_->check_out(p.session, &job.session_state);
  try {
    const SessionState& st = job.session_state;
    const bool fresh = !in_session || (st.position == 0 && st.pending.empty());
    // The first text of a sequence goes through encode_prompt (a BOS where the tokenizer
    // has one); a template's own BOS text is dropped so it is not there twice.
    auto encode = [&](std::string text) {
      if (!fresh) return tok_->encode(text);
      if (!bos_.empty() && text.rfind(bos_, 0) == 0) text.erase(0, bos_.size());
      return tok_->encode_prompt(text);
    };
    auto render = [&](const std::vector<ChatMessage>& m, bool gen) {
      try {
        return tmpl_.render(m, gen, bos_, eos_);
      } catch (const Error& e) {
        http_fail(400, "the chat template refused the messages: ", e.what());
      }
    };
    std::vector<int32_t> ids;
    if (p.chat) {
      // Only what the state has not read: the template over the whole conversation, less
      // the transcript the state holds. A template that does not extend its own past
      // rendering (it rewrites earlier turns) gets the new messages rendered alone.
      std::vector<ChatMessage> all = st.history;
      all.insert(all.end(), p.messages.begin(), p.messages.end());
      const std::string full = render(all, true);
      std::string text = full.rfind(st.transcript, 0) == 0 ? full.substr(st.transcript.size())
                                                           : render(p.messages, true);
      job.input_text = text;
      ids = encode(text);
      if (in_session) job.new_messages = p.messages;
    } else if (p.prompt_ids) {
      ids = *p.prompt_ids;
      const int64_t vocab = std::min(tok_->vocab_size(), model_.vocab_size());
      for (int32_t id : ids)  // before decode, which would refuse it as a server error
        if (id < 0 || id >= vocab)
          http_fail(400, "prompt token id ", id, " is outside the vocabulary of ", vocab);
      job.input_text = sanitize_utf8(tok_->decode(ids));
    } else {
      ids = encode(p.prompt);
      job.input_text = sanitize_utf8(p.prompt);
    }
    if (ids.empty() && st.pending.empty())
      http_fail(400, in_session ? "the prompt is empty and the session has nothing to continue from"
                                : "the prompt is empty");
    if (static_cast<int64_t>(ids.size()) > opt_.max_prompt_tokens)
      http_fail(400, "the prompt has ", ids.size(), " tokens, more than --max-prompt-tokens ",
                opt_.max_prompt_tokens);
    const int64_t need = st.position + static_cast<int64_t>(st.pending.size() + ids.size());
    if (need > scheduler_->capacity())
      http_fail(400, "the ", in_session ? "session" : "prompt", " needs ", need,
                " tokens of context; this server's slots hold ", scheduler_->capacity(),
                " (--context)");
    job.input = std::move(ids);
    job.prompt_tokens = static_cast<int64_t>(job.input.size());
  } catch (...) {
    if (job.session) sessions_->check_in(job.session, std::move(job.session_state));
    job.session.reset();
    throw;
  }
}

void HttpServer::completion(const httplib::Request& req, httplib::Response& res, bool chat) {
  const CompletionParams p = parse_completion_request(req.body, chat, opt_.limits);
  auto job = std::make_shared<Job>();
  job->id = next_job_++;
  job->gen.max_new = p.max_tokens;
  job->gen.sampling = p.sampling;
  job->gen.seed = p.seed;
  job->gen.valid_vocab = std::min(tok_->vocab_size(), model_.vocab_size());
  job->gen.stop_ids = tok_->stop_ids();
  job->gen.banned_ids = tok_->unused_ids();
  job->stop_strings = p.stop;
  job->stop_id_text = eos_;
  if (chat && default_template_) job->stop_strings.push_back(kDefaultTurnStop);
  job->deadline = Clock::now() + std::chrono::milliseconds(
                                     static_cast<int64_t>(opt_.request_timeout_s * 1000));
  prepare_input(p, *job);
  if (!scheduler_->submit(job)) {
    if (job->session) sessions_->check_in(job->session, std::move(job->session_state));
    ++rejected_;
    res.set_header("Retry-After", "1");
    http_fail(503, "the server is busy: ", opt_.sched.max_queue,
              " requests already wait for a sequence slot (--max-queue); retry later");
  }
  const std::string id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(job->id);
  const int64_t created = static_cast<int64_t>(std::time(nullptr));
  const char* object = chat ? (p.stream ? "chat.completion.chunk" : "chat.completion")
                            : "text_completion";
  auto usage = [job] {
    return nlohmann::json{{"prompt_tokens", job->prompt_tokens},
                          {"completion_tokens", job->generated},
                          {"total_tokens", job->prompt_tokens + job->generated}};
  };
  auto envelope = [=, this](nlohmann::json choice) {
    nlohmann::json j = {{"id", id},
                        {"object", object},
                        {"created", created},
                        {"model", opt_.model_name},
                        {"choices", nlohmann::json::array({std::move(choice)})}};
    if (!p.session.empty()) j["session"] = p.session;
    return j;
  };

  if (!p.stream) {
    std::string text;
    std::vector<int32_t> ids;
    JobEvent ev;
    for (;;) {
      if (!job->out.pop(&ev, std::chrono::milliseconds(200))) continue;
      text += ev.text;
      ids.insert(ids.end(), ev.ids.begin(), ev.ids.end());
      if (ev.finished) break;
    }
    if (ev.finish_reason == "timeout") {
      ++timeouts_;
      http_fail(504, "the request ran past --request-timeout ", opt_.request_timeout_s, " s (",
                job->generated, " tokens generated)");
    }
    if (ev.finish_reason == "error") http_fail(500, ev.error);
    nlohmann::json j = envelope(choice_json(chat, text, ids, ev.finish_reason,
                                            p.return_token_ids, true, false));
    j["usage"] = usage();
    send_json(res, 200, j);
    return;
  }

  // Streaming: one event per released piece of text, a last one with the finish reason,
  // then [DONE]. A write that fails means the client left: the job is cancelled, which
  // frees its slot at the next tick.
  struct StreamState {
    bool first = true, ended = false;
    Clock::time_point last_write = Clock::now();
  };
  auto ss = std::make_shared<StreamState>();
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, job, ss, envelope, usage, chat, p](size_t, httplib::DataSink& sink) {
        auto send = [&](const nlohmann::json& j) {
          const std::string s = "data: " + dump_json(j) + "\n\n";
          ss->last_write = Clock::now();
          return sink.write(s.data(), s.size());
        };
        if (ss->ended) {
          sink.done();
          return true;
        }
        JobEvent ev;
        while (!job->out.pop(&ev, std::chrono::milliseconds(100))) {
          // A comment line now and then finds a client that went away while nothing streams.
          if (Clock::now() - ss->last_write > std::chrono::seconds(2)) {
            ss->last_write = Clock::now();
            if (!sink.write(": ping\n\n", 8)) {
              job->cancelled = true;
              return false;
            }
          }
        }
        bool ok = true;
        if (!ev.text.empty() || !ev.ids.empty() || (ss->first && chat)) {
          ok = send(envelope(choice_json(chat, ev.text, ev.ids, nullptr, p.return_token_ids,
                                         ss->first, true)));
          ss->first = false;
        }
        if (ok && ev.finished) {
          if (ev.finish_reason == "error") {
            ok = send({{"error", {{"message", ev.error}, {"type", "server_error"}, {"code", 500}}}});
          } else {
            if (ev.finish_reason == "timeout") ++timeouts_;
            nlohmann::json last = envelope(choice_json(chat, "", {}, ev.finish_reason,
                                                       p.return_token_ids, false, true));
            last["usage"] = usage();
            ok = send(last);
          }
          const char done[] = "data: [DONE]\n\n";
          ok = ok && sink.write(done, sizeof done - 1);
          ss->ended = true;
          if (ok) sink.done();
        }
        if (!ok) job->cancelled = true;
        return ok;
      },
      [this, job](bool success) {
        if (!success) {
          job->cancelled = true;
          ++disconnects_;
        }
      });
}

}  // namespace pf
