// The load test: 32 concurrent streams of 256 tokens each. Every stream must carry exactly
// the tokens `generate` samples for its seed (none dropped, none duplicated, none from
// another stream); the total rate is printed for the log.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <future>

#include "serve/serve_test_util.h"

namespace pf::test {
namespace {

TEST(Load, ThirtyTwoStreamsOf256TokensLoseNothing) {
  TempDir dir;
  const std::string model = make_model_dir(dir, tiny_serve_mamba());
  ServeOptions opt;
  opt.sched.max_sequences = 32;
  TestServer srv(model, opt);
  constexpr int kStreams = 32, kTokens = 256;
  auto prompt = [](int i) { return "stream " + std::to_string(i) + ":"; };
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::future<Stream>> f;
  for (int i = 0; i < kStreams; ++i)
    f.push_back(std::async(std::launch::async, [&, i] {
      return post_stream(srv, "/v1/completions",
                         {{"prompt", prompt(i)}, {"max_tokens", kTokens}, {"seed", 1000 + i},
                          {"return_token_ids", true}});
    }));
  std::vector<Stream> got;
  for (auto& x : f) got.push_back(x.get());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_EQ(got[i].status, 200) << "stream " << i << ": " << got[i].error << " after "
                                  << got[i].events.size() << " events";
    EXPECT_TRUE(got[i].done) << "stream " << i;
    EXPECT_EQ(got[i].finish_reason, "length");
    ASSERT_EQ(got[i].ids.size(), static_cast<size_t>(kTokens)) << "stream " << i;
    EXPECT_EQ(got[i].ids, reference_tokens(model, bytes_of(prompt(i)), 1000 + i, kTokens))
        << "stream " << i;
  }
  std::printf("load: %d streams x %d tokens in %.2f s = %.0f tokens/s\n", kStreams, kTokens, secs,
              kStreams * kTokens / secs);
}

}  // namespace
}  // namespace pf::test
