// Completions over real HTTP: the same tokens as `generate` for the same seed, streamed or
// not, one request or many at once; stop strings; the chat route.
#include <gtest/gtest.h>

#include <future>

#include "serve/serve_test_util.h"
#include "serve/text_stream.h"

namespace pf::test {
namespace {

class Completions : public ::testing::Test {
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
TempDir* Completions::dir_ = nullptr;
std::string* Completions::model_ = nullptr;

TEST_F(Completions, NonStreamedMatchesGenerate) {
  TestServer srv(*model_, ServeOptions{});
  const Reply r = post(srv, "/v1/completions",
                       {{"prompt", "In the beginning"}, {"max_tokens", 40}, {"seed", 11},
                        {"temperature", 0.8}, {"return_token_ids", true}});
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(ids_of(r.body), reference_tokens(*model_, bytes_of("In the beginning"), 11, 40));
  EXPECT_EQ(r.body["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(r.body["usage"]["prompt_tokens"], 16);
  EXPECT_EQ(r.body["usage"]["completion_tokens"], 40);
  EXPECT_EQ(r.body["object"], "text_completion");
}

TEST_F(Completions, StreamedEqualsNonStreamed) {
  TestServer srv(*model_, ServeOptions{});
  const json body = {{"prompt", "And God said"}, {"max_tokens", 64}, {"seed", 5},
                     {"return_token_ids", true}};
  const Reply whole = post(srv, "/v1/completions", body);
  ASSERT_EQ(whole.status, 200);
  const Stream st = post_stream(srv, "/v1/completions", body);
  ASSERT_EQ(st.status, 200);
  EXPECT_TRUE(st.done);
  EXPECT_EQ(st.ids, ids_of(whole.body));
  EXPECT_EQ(st.text, whole.body["choices"][0]["text"].get<std::string>());
  EXPECT_EQ(st.finish_reason, "length");
  EXPECT_GE(st.events.size(), 3u);  // token by token, not one blob
  // Chat streams the same way.
  const json chat = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"max_tokens", 32},
                     {"seed", 9}, {"return_token_ids", true}};
  const Reply cw = post(srv, "/v1/chat/completions", chat);
  ASSERT_EQ(cw.status, 200) << cw.body.dump();
  const Stream cs = post_stream(srv, "/v1/chat/completions", chat);
  EXPECT_EQ(cs.ids, ids_of(cw.body));
  EXPECT_EQ(cs.text, cw.body["choices"][0]["message"]["content"].get<std::string>());
  EXPECT_EQ(cs.events.front()["object"], "chat.completion.chunk");
  EXPECT_EQ(cs.events.front()["choices"][0]["delta"]["role"], "assistant");
}

TEST_F(Completions, ChatUsesThePlainTemplate) {
  TestServer srv(*model_, ServeOptions{});
  const Reply r = post(srv, "/v1/chat/completions",
                       {{"messages", {{{"role", "system"}, {"content", "Be brief."}},
                                      {{"role", "user"}, {"content", "Who made the light?"}}}},
                        {"max_tokens", 12}, {"seed", 2}, {"temperature", 0},
                        {"return_token_ids", true}});
  ASSERT_EQ(r.status, 200) << r.body.dump();
  const std::string prompt = "System: Be brief.\nUser: Who made the light?\nAssistant: ";
  const auto want = reference_tokens(*model_, bytes_of(prompt), 2, 12, 0.0f);
  const auto got = ids_of(r.body);
  // Same tokens up to where the default template's turn stop ("\nUser:") may cut it.
  ASSERT_LE(got.size(), want.size());
  EXPECT_EQ(got, std::vector<int32_t>(want.begin(), want.begin() + got.size()));
  EXPECT_EQ(r.body["usage"]["prompt_tokens"], static_cast<int64_t>(prompt.size()));
}

TEST_F(Completions, ConcurrentRequestsEachMatchGenerate) {
  ServeOptions opt;
  opt.sched.max_sequences = 8;
  TestServer srv(*model_, opt);
  std::vector<std::future<Reply>> f;
  for (int i = 0; i < 8; ++i)
    f.push_back(std::async(std::launch::async, [&, i] {
      return post(srv, "/v1/completions",
                  {{"prompt", std::string(1 + i * 7, 'a' + i)}, {"max_tokens", 30 + i},
                   {"seed", 100 + i}, {"return_token_ids", true}});
    }));
  for (int i = 0; i < 8; ++i) {
    const Reply r = f[i].get();
    ASSERT_EQ(r.status, 200) << r.body.dump();
    EXPECT_EQ(ids_of(r.body),
              reference_tokens(*model_, bytes_of(std::string(1 + i * 7, 'a' + i)), 100 + i, 30 + i))
        << "request " << i;
  }
}

TEST_F(Completions, StopStringEndsTheTextBeforeIt) {
  TestServer srv(*model_, ServeOptions{});
  const auto ids = reference_tokens(*model_, bytes_of("Let there be"), 21, 200);
  // A stop string the unstopped text contains: two printable ASCII bytes in a row.
  size_t at = 0;
  while (at + 1 < ids.size() && !(ids[at] >= 32 && ids[at] < 127 && ids[at + 1] >= 32 &&
                                  ids[at + 1] < 127))
    ++at;
  ASSERT_LT(at + 1, ids.size()) << "no printable pair in 200 sampled bytes";
  const std::string stop = {static_cast<char>(ids[at]), static_cast<char>(ids[at + 1])};
  std::string raw;
  for (int32_t t : ids) raw += static_cast<char>(t);
  const std::string want = sanitize_utf8(raw.substr(0, raw.find(stop)));
  const json body = {{"prompt", "Let there be"}, {"max_tokens", 200}, {"seed", 21},
                     {"stop", {stop}}};
  const Reply r = post(srv, "/v1/completions", body);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body["choices"][0]["text"], want);
  EXPECT_EQ(r.body["choices"][0]["finish_reason"], "stop");
  const Stream s = post_stream(srv, "/v1/completions", body);
  EXPECT_EQ(s.text, want);
  EXPECT_EQ(s.finish_reason, "stop");
}

TEST_F(Completions, ModelsHealthMetricsAndPage) {
  TestServer srv(*model_, ServeOptions{});
  const Reply m = get(srv, "/v1/models");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.body["data"][0]["arch"], "mamba");
  EXPECT_EQ(get(srv, "/health").body["status"], "ok");
  ASSERT_EQ(post(srv, "/v1/completions", {{"prompt", "x"}, {"max_tokens", 5}}).status, 200);
  auto r = srv.client()->Get("/metrics");
  ASSERT_TRUE(r);
  for (const char* name :
       {"postformer_requests_total{route=\"/v1/completions\",status=\"200\"} 1",
        "postformer_generated_tokens_total 5", "postformer_queue_depth 0",
        "postformer_active_sequences", "postformer_state_memory_bytes{kind=\"sessions\"}",
        "postformer_time_to_first_token_seconds_count 1", "postformer_decode_tokens_per_second"})
    EXPECT_NE(r->body.find(name), std::string::npos) << name << "\n" << r->body;
  auto page = srv.client()->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("<html"), std::string::npos);
  EXPECT_NE(page->body.find("/v1/chat/completions"), std::string::npos);
}

}  // namespace
}  // namespace pf::test
