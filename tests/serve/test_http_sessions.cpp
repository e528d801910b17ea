// Sessions over real HTTP: a turn reads only its new tokens and continues exactly as one
// long prompt would; forks are independent; saved sessions continue exactly after a
// restart; eviction under the memory limit goes to disk first.
#include <gtest/gtest.h>

#include "serve/serve_test_util.h"

namespace pf::test {
namespace {

std::vector<int32_t> cat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

json turn(const std::string& session, const std::string& prompt, uint64_t seed, int n = 24) {
  return {{"prompt", prompt}, {"session", session}, {"max_tokens", n}, {"seed", seed},
          {"return_token_ids", true}};
}

class Sessions : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    model_ = make_model_dir(dir_, GetParam() == "mamba" ? tiny_serve_mamba() : tiny_serve_llama());
  }
  TempDir dir_;
  std::string model_;
};

TEST_P(Sessions, TurnsContinueLikeOneLongPrompt) {
  TestServer srv(model_, ServeOptions{});
  ASSERT_EQ(post(srv, "/v1/sessions", {{"id", "a"}}).status, 201);
  const Reply t1 = post(srv, "/v1/completions", turn("a", "In the beginning", 1));
  ASSERT_EQ(t1.status, 200) << t1.body.dump();
  const Reply t2 = post(srv, "/v1/completions", turn("a", " and then", 2));
  ASSERT_EQ(t2.status, 200) << t2.body.dump();
  EXPECT_EQ(t2.body["usage"]["prompt_tokens"], 9);  // only the new text is read
  const auto long_prompt = cat(cat(bytes_of("In the beginning"), ids_of(t1.body)), bytes_of(" and then"));
  EXPECT_EQ(ids_of(t2.body), reference_tokens(model_, long_prompt, 2, 24));
  // The session's position counts every token it has seen (the last sample is pending).
  const Reply info = get(srv, "/v1/sessions/a");
  EXPECT_EQ(info.body["position"], static_cast<int64_t>(long_prompt.size() + 24));
  EXPECT_GT(info.body["state_bytes"].get<int64_t>(), 0);
  // An empty prompt continues from the pending token.
  const Reply t3 = post(srv, "/v1/completions", turn("a", "", 3, 10));
  ASSERT_EQ(t3.status, 200) << t3.body.dump();
  EXPECT_EQ(ids_of(t3.body), reference_tokens(model_, cat(long_prompt, ids_of(t2.body)), 3, 10));
}

TEST_P(Sessions, ForksAreIndependent) {
  TestServer srv(model_, ServeOptions{});
  ASSERT_EQ(post(srv, "/v1/sessions", {{"id", "root"}}).status, 201);
  const Reply t1 = post(srv, "/v1/completions", turn("root", "Hear, O Israel", 4));
  ASSERT_EQ(t1.status, 200);
  const Reply f = post(srv, "/v1/sessions/root/fork", {{"id", "branch"}});
  ASSERT_EQ(f.status, 201) << f.body.dump();
  EXPECT_EQ(f.body["position"], get(srv, "/v1/sessions/root").body["position"]);
  const auto base = cat(bytes_of("Hear, O Israel"), ids_of(t1.body));
  // Each branch continues from the fork point, whatever the other one did.
  const Reply r = post(srv, "/v1/completions", turn("root", " the Lord", 5));
  const Reply b = post(srv, "/v1/completions", turn("branch", " our God", 6));
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(b.status, 200);
  EXPECT_EQ(ids_of(r.body), reference_tokens(model_, cat(base, bytes_of(" the Lord")), 5, 24));
  EXPECT_EQ(ids_of(b.body), reference_tokens(model_, cat(base, bytes_of(" our God")), 6, 24));
}

TEST_P(Sessions, SavedSessionsContinueExactlyAfterARestart) {
  ServeOptions opt;
  opt.session_dir = dir_ / "sessions";
  std::vector<int32_t> prompt_a, prompt_b;
  {
    TestServer srv(model_, opt);
    ASSERT_EQ(post(srv, "/v1/sessions", {{"id", "kept"}}).status, 201);
    ASSERT_EQ(post(srv, "/v1/sessions", {{"id", "atexit"}}).status, 201);
    const Reply a = post(srv, "/v1/completions", turn("kept", "Blessed are", 7));
    const Reply b = post(srv, "/v1/completions", turn("atexit", "the meek", 8));
    ASSERT_EQ(a.status, 200);
    ASSERT_EQ(b.status, 200);
    prompt_a = cat(bytes_of("Blessed are"), ids_of(a.body));
    prompt_b = cat(bytes_of("the meek"), ids_of(b.body));
    const Reply saved = post(srv, "/v1/sessions/kept/save", json::object());
    ASSERT_EQ(saved.status, 200) << saved.body.dump();
    EXPECT_TRUE(std::filesystem::exists(saved.body["path"].get<std::string>()));
  }  // "atexit" is saved when the server stops
  TestServer again(model_, opt);
  const Reply list = get(again, "/v1/sessions");
  ASSERT_EQ(list.body["data"].size(), 2u) << list.body.dump();
  const Reply a2 = post(again, "/v1/completions", turn("kept", " the poor", 9));
  const Reply b2 = post(again, "/v1/completions", turn("atexit", " for they", 10));
  ASSERT_EQ(a2.status, 200) << a2.body.dump();
  ASSERT_EQ(b2.status, 200) << b2.body.dump();
  EXPECT_EQ(ids_of(a2.body), reference_tokens(model_, cat(prompt_a, bytes_of(" the poor")), 9, 24));
  EXPECT_EQ(ids_of(b2.body), reference_tokens(model_, cat(prompt_b, bytes_of(" for they")), 10, 24));
  // Deleting a session removes its file.
  ASSERT_EQ(again.client()->Delete("/v1/sessions/kept")->status, 200);
  EXPECT_FALSE(std::filesystem::exists(opt.session_dir + "/kept.session.safetensors"));
  EXPECT_EQ(get(again, "/v1/sessions/kept").status, 404);
}

TEST_P(Sessions, EvictionGoesToDiskAndComesBack) {
  ServeOptions opt;
  opt.session_dir = dir_ / "evict";
  opt.max_state_memory = 1;  // every parked state is over the limit: evicted at once
  TestServer srv(model_, opt);
  ASSERT_EQ(post(srv, "/v1/sessions", {{"id", "e"}}).status, 201);
  const Reply t1 = post(srv, "/v1/completions", turn("e", "Jesus wept", 11));
  ASSERT_EQ(t1.status, 200);
  EXPECT_FALSE(get(srv, "/v1/sessions/e").body["resident"].get<bool>());
  EXPECT_TRUE(std::filesystem::exists(opt.session_dir + "/e.session.safetensors"));
  const Reply t2 = post(srv, "/v1/completions", turn("e", ".", 12));
  ASSERT_EQ(t2.status, 200) << t2.body.dump();
  EXPECT_EQ(ids_of(t2.body),
            reference_tokens(model_, cat(cat(bytes_of("Jesus wept"), ids_of(t1.body)), bytes_of(".")),
                             12, 24));
}

TEST_P(Sessions, EvictedWithoutADirectoryIsNamedIn404) {
  ServeOptions opt;
  opt.max_state_memory = 1;
  TestServer srv(model_, opt);
  ASSERT_EQ(post(srv, "/v1/sessions", {{"id", "gone"}}).status, 201);
  ASSERT_EQ(post(srv, "/v1/completions", turn("gone", "x", 1)).status, 200);
  const Reply r = post(srv, "/v1/completions", turn("gone", "y", 1));
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body["error"]["message"].get<std::string>().find("evicted"), std::string::npos);
}

TEST_P(Sessions, ChatTurnReadsOnlyTheNewMessage) {
  TestServer srv(model_, ServeOptions{});
  ASSERT_EQ(post(srv, "/v1/sessions", {{"id", "c"}}).status, 201);
  auto chat = [&](const std::string& text) {
    return post(srv, "/v1/chat/completions",
                {{"session", "c"}, {"messages", {{{"role", "user"}, {"content", text}}}},
                 {"max_tokens", 8}, {"seed", 1}});
  };
  const Reply first = chat("Hello there");
  ASSERT_EQ(first.status, 200) << first.body.dump();
  EXPECT_EQ(first.body["usage"]["prompt_tokens"],
            static_cast<int64_t>(std::string("User: Hello there\nAssistant: ").size()));
  const int64_t after_stop = std::string(" And then?\nAssistant: ").size();
  const int64_t after_length = std::string("\nUser: And then?\nAssistant: ").size();
  std::string prev = first.body["choices"][0]["finish_reason"];
  for (int i = 0; i < 3; ++i) {
    const Reply next = chat("And then?");
    ASSERT_EQ(next.status, 200) << next.body.dump();
    // Only the new turn is read: after a reply cut by the turn stop ("\nUser:", which the
    // state has read) the rest of that line; after one cut by max_tokens, the whole line.
    EXPECT_EQ(next.body["usage"]["prompt_tokens"], prev == "stop" ? after_stop : after_length)
        << "after a reply that ended with " << prev;
    prev = next.body["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(get(srv, "/v1/sessions/c").body["turns"], 4);
}

INSTANTIATE_TEST_SUITE_P(Archs, Sessions, ::testing::Values("mamba", "llama"));

}  // namespace
}  // namespace pf::test
