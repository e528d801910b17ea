// Data: byte tokenizer, UTF-8 validation, corpus split and sampling, token files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "base/error.h"
#include "data/corpus.h"
#include "data/tokenizer.h"
#include "infer/sampler.h"

namespace pf {
namespace {

std::string temp_file(const std::string& name, const std::string& contents) {
  auto p = std::filesystem::temp_directory_path() /
           ("pf_data_" + std::to_string(std::random_device{}()) + name);
  std::ofstream(p, std::ios::binary) << contents;
  return p.string();
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ByteTokenizer, RoundTripsArbitraryText) {
  ByteTokenizer t;
  const std::string s = "héllo\n\x01 wörld ✓";
  auto ids = t.encode(s);
  EXPECT_EQ(ids.size(), s.size());
  EXPECT_EQ(ids[1], 0xC3);
  EXPECT_EQ(t.decode(ids), s);
  EXPECT_THROW(t.decode_token(256), Error);
}

TEST(Utf8, FindsInvalidSequences) {
  EXPECT_EQ(find_invalid_utf8("plain ascii"), -1);
  EXPECT_EQ(find_invalid_utf8("caf\xC3\xA9 \xE2\x9C\x93 \xF0\x9F\x98\x80"), -1);
  EXPECT_EQ(find_invalid_utf8("ab\xFF"), 2);
  EXPECT_EQ(find_invalid_utf8("ab\xC3"), 2);            // truncated
  EXPECT_EQ(find_invalid_utf8("\xC0\xAF"), 0);          // overlong
  EXPECT_EQ(find_invalid_utf8("x\xED\xA0\x80"), 1);     // surrogate
  EXPECT_EQ(find_invalid_utf8("\xF4\x90\x80\x80"), 0);  // above U+10FFFF
}

TEST(TextFile, BadFilesGetClearErrors) {
  const std::string empty = temp_file("empty.txt", "");
  EXPECT_NE(error_of([&] { read_text_file(empty); }).find("is empty"), std::string::npos);
  const std::string latin1 = temp_file("latin1.txt", "caf\xE9 au lait");
  const std::string msg = error_of([&] { read_text_file(latin1); });
  EXPECT_NE(msg.find("not valid UTF-8"), std::string::npos) << msg;
  EXPECT_NE(msg.find("offset 3"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { read_text_file("/nonexistent/x.txt"); }).find("cannot open"),
            std::string::npos);
  std::filesystem::remove(empty);
  std::filesystem::remove(latin1);
}

TEST(TokenFile, ParsesIdsAndRejectsGarbage) {
  const std::string good = temp_file("ids.txt", "1 2\n3\t 255\n");
  EXPECT_EQ(read_token_file(good), (std::vector<int32_t>{1, 2, 3, 255}));
  const std::string bad = temp_file("bad.txt", "1 2 x3 4");
  EXPECT_NE(error_of([&] { read_token_file(bad); }).find("'x3' is not a token id (entry 3)"),
            std::string::npos);
  const std::string neg = temp_file("neg.txt", "5 -1");
  EXPECT_THROW(read_token_file(neg), Error);
  const std::string none = temp_file("none.txt", "  \n");
  EXPECT_THROW(read_token_file(none), Error);
  for (auto& f : {good, bad, neg, none}) std::filesystem::remove(f);
}

TEST(Corpus, SplitsAndSamplesDeterministically) {
  std::vector<int32_t> toks(1000);
  for (int i = 0; i < 1000; ++i) toks[i] = i % 256;
  Corpus c(toks, 1000, 0.1);
  EXPECT_EQ(c.train_tokens(), 900);
  EXPECT_EQ(c.val_tokens(), 100);
  Batch a = c.train_batch(4, 16, 42, 3), b = c.train_batch(4, 16, 42, 3),
        d = c.train_batch(4, 16, 42, 4);
  EXPECT_EQ(a.inputs, b.inputs);
  EXPECT_NE(a.inputs, d.inputs);
  for (int64_t i = 0; i < 4 * 16; ++i) EXPECT_EQ(a.targets[i], (a.inputs[i] + 1) % 256);
  // Training windows never reach into the validation split.
  for (uint64_t s = 0; s < 200; ++s) {
    Batch x = c.train_batch(2, 16, 1, s);
    for (int32_t v : x.targets) EXPECT_LT(v, 256);
  }
  EXPECT_EQ(c.num_val_batches(2, 16), 3);
  Batch v = c.val_batch(2, 16, 0);
  EXPECT_EQ(v.inputs[0], 900 % 256);
  EXPECT_THROW(c.val_batch(2, 16, 3), Error);
}

TEST(Sampler, GreedyTopKTopP) {
  std::vector<float> logits = {0.0f, 3.0f, 1.0f, 2.9f};
  Rng rng(1);
  SamplingOptions greedy;
  greedy.temperature = 0;
  EXPECT_EQ(sample_token(logits.data(), 4, greedy, rng), 1);
  SamplingOptions k2;
  k2.temperature = 1.0f, k2.top_k = 2;
  int counts[4] = {0, 0, 0, 0};
  for (int i = 0; i < 2000; ++i) counts[sample_token(logits.data(), 4, k2, rng)]++;
  EXPECT_EQ(counts[0] + counts[2], 0);
  EXPECT_NEAR(counts[1] / 2000.0, 1.0 / (1.0 + std::exp(-0.1)), 0.04);
  SamplingOptions p;
  p.temperature = 1.0f, p.top_p = 0.3f;  // the top token alone holds > 30% of the mass
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sample_token(logits.data(), 4, p, rng), 1);
}

}  // namespace
}  // namespace pf
