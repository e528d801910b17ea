// SentencePiece tokenizer: decode_token streams the exact bytes (space marks, byte fallback,
// control pieces, unk), reserved ids, load_tokenizer's choice of file, load errors. Models are
// trained by the test (tiny BPE and unigram models on generated text, Llama 2 settings).
#include <gtest/gtest.h>
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "base/error.h"
#include "data/bpe_tokenizer.h"
#include "data/sp_tokenizer.h"

namespace pf {
namespace {

namespace fs = std::filesystem;
using Ids = std::vector<int32_t>;

// A fresh directory under the system temp dir, removed with the object.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("pf_sp_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    const fs::path p = path / name;
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
};

// About 12 KB of English-like lines from a fixed word list (deterministic LCG), with digits
// and punctuation; no newlines inside a line, since the trainer reads one sentence per line.
std::string training_text() {
  static const char* words[] = {
      "the",   "a",     "model", "state",   "token", "learns", "quickly",   "and",    "of",
      "to",    "in",    "is",    "that",    "with",  "for",    "recurrent", "memory", "layer",
      "text",  "small", "large", "network", "time",  "data",   "retention", "runs",   "on",
      "every", "step",  "it",    "was",     "world", "hello",  "language",  "reads",  "writes",
      "there", "their", "where", "when",    "which", "Then",   "The",       "It",     "We"};
  constexpr size_t kWords = sizeof(words) / sizeof(words[0]);
  uint32_t rng = 12345;
  auto next = [&rng] { return (rng = rng * 1664525u + 1013904223u) >> 8; };
  std::string text;
  while (text.size() < 12000) {
    const int len = 4 + next() % 9;
    for (int w = 0; w < len; ++w) {
      if (w) text += next() % 11 == 0 ? ", " : " ";
      text += words[next() % kWords];
      if (next() % 17 == 0) text += " " + std::to_string(next() % 2000);
    }
    text += next() % 5 == 0 ? "?\n" : ".\n";
  }
  return text;
}

// Trains a model with the Llama 2 tokenizer's settings (identity normalization, dummy prefix,
// extra whitespace kept, digits split, byte fallback); returns the tokenizer.model path.
std::string train_model(const TempDir& dir, const std::string& type, bool byte_fallback) {
  const std::string input = dir.write("corpus.txt", training_text());
  const std::string prefix =
      (dir.path / ("sp_" + type + (byte_fallback ? "_bytes" : "_nobytes"))).string();
  // The map overload, unlike the string one, logs nothing before minloglevel applies.
  const std::unordered_map<std::string, std::string> args = {
      {"input", input},
      {"model_prefix", prefix},
      {"model_type", type},
      {"vocab_size", byte_fallback ? "400" : "150"},
      {"byte_fallback", byte_fallback ? "true" : "false"},
      {"character_coverage", "1.0"},
      {"normalization_rule_name", "identity"},
      {"add_dummy_prefix", "true"},
      {"remove_extra_whitespaces", "false"},
      {"split_digits", "true"},
      {"hard_vocab_limit", "false"},
      {"num_threads", "1"},
      {"minloglevel", "2"},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
  };
  const auto status = sentencepiece::SentencePieceTrainer::Train(args);
  if (!status.ok()) throw std::runtime_error("training failed: " + status.ToString());
  return prefix + ".model";
}

// Models shared by the tests: training once per suite keeps the runtime low.
class SpTokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    bpe_path_ = new std::string(train_model(*dir_, "bpe", true));
    unigram_path_ = new std::string(train_model(*dir_, "unigram", true));
    no_fallback_path_ = new std::string(train_model(*dir_, "unigram", false));
  }
  static void TearDownTestSuite() {
    delete no_fallback_path_;
    delete unigram_path_;
    delete bpe_path_;
    delete dir_;
  }
  static TempDir* dir_;
  static std::string *bpe_path_, *unigram_path_, *no_fallback_path_;
};
TempDir* SpTokenizerTest::dir_ = nullptr;
std::string* SpTokenizerTest::bpe_path_ = nullptr;
std::string* SpTokenizerTest::unigram_path_ = nullptr;
std::string* SpTokenizerTest::no_fallback_path_ = nullptr;

const std::vector<std::string> kRoundTripTexts = {
    "hello world",
    "The model learns quickly, and the state runs on every step.",
    "Then 1234 tokens of text?",
    "  two leading spaces and   three inside  ",
    "line one\nline two\n",
    "tabs\tand CAPS and zebra xylophone",
    "emoji \xF0\x9F\x98\x80 and \xE6\x97\xA5\xE6\x9C\xAC and caf\xC3\xA9",
    "\xF0\x9F\x98\x80",
    "",
};

// decode_token concatenation is the text with the dummy-prefix space in front (none for ""),
// and that minus the space is SentencePiece's own Decode.
void expect_round_trips(const std::string& path) {
  auto tok = SentencePieceTokenizer::from_file(path);
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.Load(path).ok());
  for (const std::string& text : kRoundTripTexts) {
    SCOPED_TRACE("text: '" + text + "'");
    const Ids ids = tok->encode(text);
    std::string streamed;
    for (int32_t id : ids) streamed += tok->decode_token(id);
    EXPECT_EQ(streamed, text.empty() ? "" : " " + text);
    EXPECT_EQ(tok->decode(ids), streamed);
    std::string reference;
    ASSERT_TRUE(sp.Decode(std::vector<int>(ids.begin(), ids.end()), &reference).ok());
    EXPECT_EQ(reference, text);
  }
}

TEST_F(SpTokenizerTest, BpeRoundTripsThroughDecodeToken) { expect_round_trips(*bpe_path_); }

TEST_F(SpTokenizerTest, UnigramRoundTripsThroughDecodeToken) { expect_round_trips(*unigram_path_); }

TEST_F(SpTokenizerTest, NameSizeAndReservedIds) {
  auto tok = SentencePieceTokenizer::from_file(*bpe_path_);
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.Load(*bpe_path_).ok());
  EXPECT_EQ(tok->name(), "sentencepiece");
  EXPECT_EQ(tok->vocab_size(), sp.GetPieceSize());
  EXPECT_GE(tok->vocab_size(), 3 + 256);  // reserved pieces and the 256 byte pieces
  EXPECT_EQ(tok->unk_id(), 0);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->stop_ids(), (Ids{2}));
  EXPECT_EQ(tok->piece(1), "<s>");
  EXPECT_EQ(tok->piece(2), "</s>");
  // Control pieces are invisible; <unk> prints the unk surface.
  EXPECT_EQ(tok->decode_token(1), "");
  EXPECT_EQ(tok->decode_token(2), "");
  EXPECT_EQ(tok->decode_token(0), " \xE2\x81\x87 ");
  // A word piece: its space mark is a space.
  const Ids hello = tok->encode("hello");
  ASSERT_FALSE(hello.empty());
  EXPECT_EQ(tok->piece(hello[0]).rfind("\xE2\x96\x81", 0), 0u);
  EXPECT_EQ(tok->decode_token(hello[0])[0], ' ');
  // Trained merges: frequent words take a piece or two, not one per letter.
  EXPECT_LE(tok->encode("the model learns").size(), 6u);
}

TEST_F(SpTokenizerTest, EncodeWithBosPrependsBos) {
  auto tok = SentencePieceTokenizer::from_file(*bpe_path_);
  const Ids plain = tok->encode("hello world");
  Ids expected = {1};
  expected.insert(expected.end(), plain.begin(), plain.end());
  EXPECT_EQ(tok->encode_with_bos("hello world"), expected);
  EXPECT_EQ(tok->encode_with_bos(""), (Ids{1}));
  EXPECT_NE(plain.front(), 1);  // encode() adds no BOS
}

TEST_F(SpTokenizerTest, ByteFallbackGivesSingleBytes) {
  for (const std::string* path : {bpe_path_, unigram_path_}) {
    auto tok = SentencePieceTokenizer::from_file(*path);
    for (const std::string text : {"\xF0\x9F\x98\x80", "\xE6\x97\xA5\xE6\x9C\xAC"}) {
      SCOPED_TRACE(*path + ": " + text);
      const Ids ids = tok->encode(text);
      // The dummy prefix "▁" alone, then one byte piece per UTF-8 byte.
      ASSERT_EQ(ids.size(), 1 + text.size());
      EXPECT_EQ(tok->decode_token(ids[0]), " ");
      for (size_t i = 0; i < text.size(); ++i) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "<0x%02X>", static_cast<unsigned char>(text[i]));
        EXPECT_EQ(tok->piece(ids[1 + i]), hex);
        EXPECT_EQ(tok->decode_token(ids[1 + i]), std::string(1, text[i]));
      }
    }
  }
}

TEST_F(SpTokenizerTest, UnknownWithoutByteFallbackDecodesToUnkSurface) {
  auto tok = SentencePieceTokenizer::from_file(*no_fallback_path_);
  const Ids ids = tok->encode("hello \xF0\x9F\x98\x80 world");
  ASSERT_NE(std::find(ids.begin(), ids.end(), 0), ids.end());
  EXPECT_EQ(tok->decode(ids), " hello  \xE2\x81\x87  world");
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.Load(*no_fallback_path_).ok());
  std::string reference;
  ASSERT_TRUE(sp.Decode(std::vector<int>(ids.begin(), ids.end()), &reference).ok());
  EXPECT_EQ(" " + reference, tok->decode(ids));
}

TEST_F(SpTokenizerTest, OutOfRangeIdsThrow) {
  auto tok = SentencePieceTokenizer::from_file(*bpe_path_);
  const int32_t n = static_cast<int32_t>(tok->vocab_size());
  EXPECT_NO_THROW(tok->decode_token(n - 1));
  EXPECT_THROW(tok->decode_token(n), Error);
  EXPECT_THROW(tok->decode_token(-1), Error);
  EXPECT_THROW(tok->piece(n), Error);
  EXPECT_THROW(tok->decode({3, n + 5}), Error);
}

// The error text of loading path as a SentencePiece model; fails the test when it loads.
std::string load_error(const std::string& path) {
  try {
    SentencePieceTokenizer::from_file(path);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << path << " loaded";
  return "";
}

TEST(SpTokenizerErrors, CorruptOrMissingFileNamesThePath) {
  TempDir dir;
  for (const std::string& content : {std::string("not a sentencepiece model"), std::string(),
                                     std::string("\x0a\x05\x0a\x03", 4)}) {
    const std::string path = dir.write("tokenizer.model", content);
    EXPECT_NE(load_error(path).find(path), std::string::npos) << load_error(path);
  }
  const std::string missing = (dir.path / "missing.model").string();
  EXPECT_NE(load_error(missing).find(missing), std::string::npos);
}

// A minimal byte-level tokenizer.json: the 256 byte tokens, no merges.
std::string byte_tokenizer_json() {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) {
    const uint32_t cp = byte_to_unicode()[b];
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    vocab[s] = b;
  }
  const nlohmann::json byte_level = {
      {"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  return nlohmann::json{
      {"added_tokens", nlohmann::json::array()},
      {"pre_tokenizer", byte_level},
      {"decoder", byte_level},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}}}
      .dump();
}

TEST_F(SpTokenizerTest, LoadTokenizerPicksSentencePieceUnlessTokenizerJsonExists) {
  TempDir sp_dir, both_dir, bad_dir;
  fs::copy_file(*bpe_path_, sp_dir.path / "tokenizer.model");
  auto tok = load_tokenizer(sp_dir.path.string());
  EXPECT_EQ(tok->name(), "sentencepiece");
  EXPECT_EQ(tok->encode("hello world"),
            SentencePieceTokenizer::from_file(*bpe_path_)->encode("hello world"));
  EXPECT_EQ(tok->stop_ids(), (Ids{2}));
  EXPECT_TRUE(has_tokenizer_files(sp_dir.path.string()));

  fs::copy_file(*bpe_path_, both_dir.path / "tokenizer.model");
  both_dir.write("tokenizer.json", byte_tokenizer_json());
  EXPECT_EQ(load_tokenizer(both_dir.path.string())->name(), "bpe");

  const std::string bad = bad_dir.write("tokenizer.model", "garbage");
  try {
    load_tokenizer(bad_dir.path.string());
    ADD_FAILURE() << "a corrupt tokenizer.model loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace pf
