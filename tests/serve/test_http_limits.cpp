// Every limit and every kind of bad request gets its status code and a JSON error body
// naming the problem; a client that leaves mid-stream frees its slot at once.
#include <gtest/gtest.h>

#include <chrono>
#include <future>

#include "serve/serve_test_util.h"

namespace pf::test {
namespace {

class Limits : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    model_ = new std::string(make_model_dir(*dir_, tiny_serve_mamba()));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete dir_;
  }
  static TempDir* dir_;
  static std::string* model_;
};
TempDir* Limits::dir_ = nullptr;
std::string* Limits::model_ = nullptr;

// The status, and that the body is an error naming `word`.
void expect_error(const TestServer& srv, const std::string& path, const std::string& body,
                  int status, const std::string& word) {
  auto r = srv.client()->Post(path.c_str(), body, "application/json");
  ASSERT_TRUE(r) << body;
  EXPECT_EQ(r->status, status) << body << " -> " << r->body;
  const json j = json::parse(r->body, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.contains("error")) << r->body;
  EXPECT_EQ(j["error"]["code"], status);
  EXPECT_NE(j["error"]["message"].get<std::string>().find(word), std::string::npos)
      << body << " -> " << r->body;
}

int64_t metric(const TestServer& srv, const std::string& name) {
  auto r = srv.client()->Get("/metrics");
  const size_t at = r->body.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stoll(r->body.substr(at + name.size() + 2));
}

TEST_F(Limits, BadRequestsGet400NamingTheField) {
  ServeOptions opt;
  opt.max_prompt_tokens = 64;
  opt.limits.max_tokens = 100;
  TestServer srv(*model_, opt);
  const std::string c = "/v1/completions", chat = "/v1/chat/completions";
  expect_error(srv, c, "{\"prompt\": \"x\",", 400, "not valid JSON");
  expect_error(srv, c, "[1, 2]", 400, "JSON object");
  expect_error(srv, c, "", 400, "not valid JSON");
  expect_error(srv, c, R"({"prompt": 5})", 400, "'prompt'");
  expect_error(srv, c, R"({"prompt": "x", "temperature": -1})", 400, "'temperature'");
  expect_error(srv, c, R"({"prompt": "x", "temperature": "hot"})", 400, "'temperature'");
  expect_error(srv, c, R"({"prompt": "x", "top_p": 0})", 400, "'top_p'");
  expect_error(srv, c, R"({"prompt": "x", "top_k": -3})", 400, "'top_k'");
  expect_error(srv, c, R"({"prompt": "x", "max_tokens": 101})", 400, "'max_tokens'");
  expect_error(srv, c, R"({"prompt": "x", "max_tokens": 2.5})", 400, "'max_tokens'");
  expect_error(srv, c, R"({"prompt": "x", "max_tokens": 1e300})", 400, "'max_tokens'");
  expect_error(srv, c, R"({"prompt": "x", "seed": -1})", 400, "'seed'");
  expect_error(srv, c, R"({"prompt": "x", "stop": [1]})", 400, "'stop'");
  expect_error(srv, c, R"({"prompt": "x", "stop": ""})", 400, "'stop'");
  expect_error(srv, c, R"({"prompt": "x", "stream": "yes"})", 400, "'stream'");
  expect_error(srv, c, R"({"prompt": "x", "n": 2})", 400, "'n'");
  expect_error(srv, c, R"({"prompt": [1, 300]})", 400, "vocabulary");
  expect_error(srv, c, R"({"prompt": ""})", 400, "empty");
  expect_error(srv, c, "{\"prompt\": \"" + std::string(65, 'a') + "\"}", 400,
               "--max-prompt-tokens");
  expect_error(srv, chat, R"({"prompt": "x"})", 400, "'messages'");
  expect_error(srv, chat, R"({"messages": []})", 400, "'messages'");
  expect_error(srv, chat, R"({"messages": [{"role": "king", "content": "x"}]})", 400, "role");
  expect_error(srv, chat, R"({"messages": [{"content": "x"}]})", 400, "role");
  expect_error(srv, chat, R"({"messages": [{"role": "user", "content": 7}]})", 400, "content");
  expect_error(srv, c, R"({"prompt": "x", "session": "../etc"})", 400, "session id");
  expect_error(srv, "/v1/sessions", R"({"id": 5})", 400, "'id'");
  // The server is still there and well.
  EXPECT_EQ(post(srv, c, {{"prompt", "x"}, {"max_tokens", 3}}).status, 200);
}

TEST_F(Limits, BodySizeAuthRoutesAndSessions) {
  ServeOptions opt;
  opt.max_body_bytes = 1000;
  opt.api_key = "sesame";
  TestServer srv(*model_, opt);
  auto c = srv.client();
  auto big = c->Post("/v1/completions", {{"Authorization", "Bearer sesame"}},
                     "{\"prompt\": \"" + std::string(2000, 'a') + "\"}", "application/json");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_NE(big->body.find("--max-body-bytes"), std::string::npos) << big->body;
  expect_error(srv, "/v1/completions", R"({"prompt": "x"})", 401, "API key");
  EXPECT_EQ(post(srv, "/v1/completions", {{"prompt", "x"}}, "wrong").status, 401);
  EXPECT_EQ(c->Get("/v1/models")->status, 401);
  EXPECT_EQ(c->Get("/metrics")->status, 401);
  EXPECT_EQ(c->Get("/health")->status, 200);  // probes and the page need no key
  EXPECT_EQ(c->Get("/")->status, 200);
  const httplib::Headers key = {{"Authorization", "Bearer sesame"}};
  EXPECT_EQ(c->Get("/v1/models", key)->status, 200);
  EXPECT_EQ(c->Get("/v1/nothing", key)->status, 404);
  EXPECT_EQ(c->Get("/v1/sessions/none", key)->status, 404);
  EXPECT_EQ(post(srv, "/v1/completions", {{"prompt", "x"}, {"session", "none"}}, "sesame").status,
            404);
  EXPECT_EQ(post(srv, "/v1/sessions", {{"id", "s"}}, "sesame").status, 201);
  EXPECT_EQ(post(srv, "/v1/sessions", {{"id", "s"}}, "sesame").status, 409);
  EXPECT_EQ(post(srv, "/v1/sessions/s/save", json::object(), "sesame").status, 400);  // no dir
  EXPECT_EQ(post(srv, "/v1/sessions/none/fork", json::object(), "sesame").status, 404);
}

TEST_F(Limits, QueueFullIs503BusySessionIs409TimeoutIs504) {
  ServeOptions opt;
  opt.sched.max_sequences = 1;
  opt.sched.max_queue = 1;
  opt.limits.max_tokens = 1 << 20;
  TestServer srv(*model_, opt);
  ASSERT_EQ(post(srv, "/v1/sessions", {{"id", "busy"}}).status, 201);
  // One stream holds the slot (until released), a second request waits in the queue: a
  // third is refused.
  std::atomic<bool> release{false};
  const json long_req = {{"prompt", "x"}, {"max_tokens", 1 << 20}, {"session", "busy"}};
  auto first = std::async(std::launch::async, [&] {
    return post_stream(srv, "/v1/completions", long_req, [&](size_t) { return !release.load(); });
  });
  while (metric(srv, "postformer_active_sequences") < 1)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  expect_error(srv, "/v1/completions", R"({"prompt": "y", "session": "busy"})", 409,
               "already running");
  auto second = std::async(std::launch::async, [&] {
    return post(srv, "/v1/completions", {{"prompt", "y"}, {"max_tokens", 2}});
  });
  while (metric(srv, "postformer_queue_depth") < 1)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  expect_error(srv, "/v1/completions", R"({"prompt": "z", "max_tokens": 2})", 503, "busy");
  release = true;  // the first client leaves; the waiting request takes its slot
  const Stream left = first.get();
  EXPECT_FALSE(left.done);
  EXPECT_GE(left.events.size(), 1u);
  EXPECT_EQ(second.get().status, 200);
  EXPECT_EQ(metric(srv, "postformer_requests_rejected_total"), 1);

  ServeOptions slow;
  slow.request_timeout_s = 0.05;
  slow.limits.max_tokens = 1 << 20;
  TestServer srv2(*model_, slow);
  expect_error(srv2, "/v1/completions", R"({"prompt": "x", "max_tokens": 1000000})", 504,
               "--request-timeout");
  const Stream s = post_stream(srv2, "/v1/completions", {{"prompt", "x"}, {"max_tokens", 1000000}});
  EXPECT_EQ(s.finish_reason, "timeout");
  EXPECT_TRUE(s.done);
}

TEST_F(Limits, ClientThatLeavesMidStreamFreesItsSlot) {
  ServeOptions opt;
  opt.sched.max_sequences = 1;
  opt.sched.max_queue = 0;
  TestServer srv(*model_, opt);
  const Stream s =
      post_stream(srv, "/v1/completions", {{"prompt", "x"}, {"max_tokens", 4000}},
                  [](size_t n) { return n < 3; });
  EXPECT_EQ(s.events.size(), 3u);
  EXPECT_FALSE(s.done);
  // Freed within a few ticks, not after 4000 tokens.
  const auto t0 = std::chrono::steady_clock::now();
  while (metric(srv, "postformer_active_sequences") != 0 &&
         std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(metric(srv, "postformer_active_sequences"), 0);
  EXPECT_LT(metric(srv, "postformer_generated_tokens_total"), 1000);
  EXPECT_EQ(metric(srv, "postformer_client_disconnects_total"), 1);
  // The one slot takes the next request.
  EXPECT_EQ(post(srv, "/v1/completions", {{"prompt", "x"}, {"max_tokens", 3}}).status, 200);
}

}  // namespace
}  // namespace pf::test
