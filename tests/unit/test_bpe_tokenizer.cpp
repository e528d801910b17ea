// Hugging Face byte-level BPE: byte map, GPT-2 pre-split, merges, added tokens, round trips,
// malformed files. Every tokenizer.json here is written by the test into a temp dir.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "base/error.h"
#include "data/bpe_tokenizer.h"

namespace pf {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Ids = std::vector<int32_t>;
using Pieces = std::vector<std::string>;

// A fresh directory under the system temp dir, removed with the object.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("pf_bpe_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
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

std::string utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// The vocab spelling of raw bytes ("hi there" -> "hiĠthere").
std::string spell(const std::string& bytes) {
  std::string s;
  for (unsigned char b : bytes) s += utf8(byte_to_unicode()[b]);
  return s;
}

// Vocab with every byte's one-char token at id = byte value.
json byte_vocab() {
  json v = json::object();
  for (int b = 0; b < 256; ++b) v[spell(std::string(1, static_cast<char>(b)))] = b;
  return v;
}

// A GPT-2 style tokenizer.json (ByteLevel pre-tokenizer and decoder, no prefix space).
json gpt2_json(const json& vocab, const json& merges) {
  const json byte_level = {{"type", "ByteLevel"},
                           {"add_prefix_space", false},
                           {"trim_offsets", true},
                           {"use_regex", true}};
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", json::array()},
          {"normalizer", {{"type", "NFC"}}},
          {"pre_tokenizer", byte_level},
          {"post_processor", byte_level},
          {"decoder", byte_level},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"vocab", vocab},
            {"merges", merges}}}};
}

// Bytes plus the merges that build "hello" and "Ġwor" (ids 256..262).
json hello_vocab() {
  json v = byte_vocab();
  const char* extra[] = {"he", "ll", "hell", "hello", "Ġw", "or", "Ġwor"};
  for (int i = 0; i < 7; ++i) v[extra[i]] = 256 + i;
  return v;
}
const json kHelloMerges = {"h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or"};

std::unique_ptr<BpeTokenizer> load(const TempDir& dir, const json& j) {
  return BpeTokenizer::from_file(dir.write("tokenizer.json", j.dump()));
}

// The error loading text as tokenizer.json; fails the test when it loads.
std::string load_error(const std::string& text, std::string* path_out = nullptr) {
  TempDir dir;
  const std::string path = dir.write("tokenizer.json", text);
  if (path_out) *path_out = path;
  try {
    BpeTokenizer::from_file(path);
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path, 0), 0u)
        << "error does not start with the path: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "loaded without error: " << text.substr(0, 200);
  return "";
}

TEST(ByteToUnicode, IsGpt2Map) {
  const auto& m = byte_to_unicode();
  EXPECT_EQ(std::set<uint32_t>(m.begin(), m.end()).size(), 256u);
  for (int b = 0x21; b <= 0x7E; ++b) EXPECT_EQ(m[b], uint32_t(b));
  EXPECT_EQ(m[' '], 0x120u);   // 'Ġ'
  EXPECT_EQ(m['\n'], 0x10Au);  // 'Ċ'
  EXPECT_EQ(m[0], 0x100u);
  EXPECT_EQ(m[0xE9], 0xE9u);  // printable Latin-1 keeps its code point
  for (uint32_t cp : m) EXPECT_NE(char_class(cp), CharClass::kSpace);
}

TEST(CharClass, LettersNumbersSpaces) {
  EXPECT_EQ(char_class('a'), CharClass::kLetter);
  EXPECT_EQ(char_class('7'), CharClass::kNumber);
  EXPECT_EQ(char_class('\t'), CharClass::kSpace);
  EXPECT_EQ(char_class('\''), CharClass::kOther);
  EXPECT_EQ(char_class(0xE9), CharClass::kLetter);    // é
  EXPECT_EQ(char_class(0x65E5), CharClass::kLetter);  // 日
  EXPECT_EQ(char_class(0x663), CharClass::kNumber);   // Arabic-Indic three
  EXPECT_EQ(char_class(0xB2), CharClass::kNumber);    // ²
  EXPECT_EQ(char_class(0xA0), CharClass::kSpace);     // no-break space
  EXPECT_EQ(char_class(0x3000), CharClass::kSpace);   // ideographic space
  EXPECT_EQ(char_class(0x1F600), CharClass::kOther);  // emoji
  EXPECT_EQ(char_class(0x301), CharClass::kOther);    // combining acute
  EXPECT_EQ(char_class(0x93F), CharClass::kOther);    // Devanagari vowel sign i
}

TEST(Gpt2PreSplit, HandCheckedExamples) {
  // Expected values checked against the real regex (Python `regex` module).
  EXPECT_EQ(gpt2_pre_split("Hello world's 123  x\n"),
            (Pieces{"Hello", " world", "'s", " 123", " ", " x", "\n"}));
  EXPECT_EQ(gpt2_pre_split("I'm  here\n\n  you'll"),
            (Pieces{"I", "'m", " ", " here", "\n\n ", " you", "'ll"}));
  EXPECT_EQ(gpt2_pre_split("don't we're DON'T"),
            (Pieces{"don", "'t", " we", "'re", " DON", "'", "T"}));
  EXPECT_EQ(gpt2_pre_split("abc123def 4567"), (Pieces{"abc", "123", "def", " 4567"}));
  EXPECT_EQ(gpt2_pre_split("Hi!!! (ok)..."), (Pieces{"Hi", "!!!", " (", "ok", ")..."}));
  EXPECT_EQ(gpt2_pre_split("a   "), (Pieces{"a", "   "}));
  EXPECT_EQ(gpt2_pre_split("  lead"), (Pieces{" ", " lead"}));
  EXPECT_EQ(gpt2_pre_split("\tx"), (Pieces{"\t", "x"}));
  EXPECT_EQ(gpt2_pre_split("h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac"),  // héllo 日本
            (Pieces{"h\xc3\xa9llo", " \xe6\x97\xa5\xe6\x9c\xac"}));
  EXPECT_EQ(gpt2_pre_split(std::string("a\xc2\xa0") + "b"),
            (Pieces{"a", "\xc2\xa0", "b"}));                        // no-break space
  EXPECT_EQ(gpt2_pre_split("ok \xf0\x9f\x91\x8d\xf0\x9f\x91\x8d"),  // 👍👍
            (Pieces{"ok", " \xf0\x9f\x91\x8d\xf0\x9f\x91\x8d"}));
  EXPECT_EQ(gpt2_pre_split("a\xd9\xa3 x\xc2\xb2!"),  // a٣ x²!
            (Pieces{"a", "\xd9\xa3", " x", "\xc2\xb2", "!"}));
  EXPECT_EQ(gpt2_pre_split(""), Pieces{});
  // Invalid UTF-8 stays, one punctuation byte at a time; the pieces still cover the input.
  EXPECT_EQ(gpt2_pre_split("a\xff\xfe b"), (Pieces{"a", "\xff\xfe", " b"}));
}

TEST(BpeTokenizer, MergesByRankInBothFormats) {
  TempDir dir;
  auto t = load(dir, gpt2_json(hello_vocab(), kHelloMerges));
  EXPECT_EQ(t->name(), "bpe");
  EXPECT_EQ(t->vocab_size(), 263);
  // "hello": he, ll, hell, hello; " world": Ġw, or, Ġwor, then l and d stay bytes.
  EXPECT_EQ(t->encode("hello world"), (Ids{259, 262, 'l', 'd'}));
  EXPECT_EQ(t->encode("hello world"), (Ids{259, 262, 'l', 'd'}));  // from the cache
  EXPECT_EQ(t->encode("helloworld"), (Ids{259, 'w', 261, 'l', 'd'}));

  json pairs = json::array();
  for (const json& m : kHelloMerges) {
    const std::string s = m.get<std::string>();
    pairs.push_back({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)});
  }
  TempDir dir2;
  auto t2 = load(dir2, gpt2_json(hello_vocab(), pairs));
  EXPECT_EQ(t2->encode("hello world"), (Ids{259, 262, 'l', 'd'}));
  EXPECT_EQ(t2->decode(t2->encode("hello world")), "hello world");
  EXPECT_EQ(t2->token_id("Ġwor"), 262);
  EXPECT_EQ(t2->token_id("nope"), std::nullopt);
}

TEST(BpeTokenizer, LowerRankMergesFirstAndLeftmostOnTies) {
  json v = byte_vocab();
  v["ab"] = 256, v["bc"] = 257, v["aa"] = 258;
  TempDir d1, d2;
  auto bc_first = load(d1, gpt2_json(v, {"b c", "a b", "a a"}));
  auto ab_first = load(d2, gpt2_json(v, {"a b", "b c", "a a"}));
  EXPECT_EQ(bc_first->encode("abc"), (Ids{'a', 257}));
  EXPECT_EQ(ab_first->encode("abc"), (Ids{256, 'c'}));
  EXPECT_EQ(ab_first->encode("aaa"), (Ids{258, 'a'}));
  EXPECT_EQ(ab_first->encode("aaaa"), (Ids{258, 258}));
}

// As Hugging Face's tokenizers (MergeTokenOutOfVocabulary): such a file is refused.
TEST(BpeTokenizer, RefusesMergesOutsideTheVocab) {
  for (const char* bad : {"x y", "Ġwor ld"}) {  // "xy" and "Ġworld" are not in the vocab
    TempDir dir;
    json merges = kHelloMerges;
    merges.push_back(bad);
    try {
      load(dir, gpt2_json(hello_vocab(), merges));
      FAIL() << "accepted merge " << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("names a token that is not in the vocab"),
                std::string::npos)
          << e.what();
    }
  }
}

TEST(BpeTokenizer, VocabularyHolesAreReportedAndDuplicateIdsRefused) {
  TempDir d1, d2;
  json v = hello_vocab();
  v["zz"] = 300;  // ids between the last one and 300 name nothing
  auto t = load(d1, gpt2_json(v, kHelloMerges));
  const std::vector<int32_t> holes = t->unused_ids();
  ASSERT_FALSE(holes.empty());
  EXPECT_EQ(holes.back(), 299);
  for (int32_t id : holes) EXPECT_THROW(t->decode_token(id), Error);
  json dup = hello_vocab();
  dup["zz"] = 5;  // the id of another entry
  EXPECT_THROW(load(d2, gpt2_json(dup, kHelloMerges)), Error);
}

TEST(BpeTokenizer, IgnoreMergesTakesWholeVocabWords) {
  json v = byte_vocab();
  v["abc"] = 256;
  json j = gpt2_json(v, json::array());
  TempDir d1, d2;
  EXPECT_EQ(load(d1, j)->encode("abc"), (Ids{'a', 'b', 'c'}));
  j["model"]["ignore_merges"] = true;
  EXPECT_EQ(load(d2, j)->encode("abc abcd"), (Ids{256, ' ', 'a', 'b', 'c', 'd'}));
}

TEST(BpeTokenizer, AddedTokensSplitTheText) {
  json j = gpt2_json(hello_vocab(), kHelloMerges);
  auto added = [](int id, const std::string& content, bool special) {
    return json{{"id", id},          {"content", content}, {"single_word", false},
                {"lstrip", false},   {"rstrip", false},    {"normalized", !special},
                {"special", special}};
  };
  j["added_tokens"] = {added(300, "<|endoftext|>", true), added(301, "ab", false),
                       added(302, "abc", false), added(303, "  ", false)};
  TempDir dir;
  auto t = load(dir, j);
  EXPECT_EQ(t->vocab_size(), 304);
  EXPECT_EQ(t->encode("hello<|endoftext|> world"), (Ids{259, 300, 262, 'l', 'd'}));
  EXPECT_EQ(t->encode("<|endoftext|>"), (Ids{300}));
  EXPECT_EQ(t->encode("xabcx"), (Ids{'x', 302, 'x'}));  // longest match wins
  EXPECT_EQ(t->encode("xabx"), (Ids{'x', 301, 'x'}));
  // A run of spaces that is an added token (as in GPT-NeoX) is cut out before pre-splitting.
  EXPECT_EQ(t->encode("a  b"), (Ids{'a', 303, 'b'}));
  EXPECT_EQ(t->special_ids(), (Ids{300}));
  EXPECT_EQ(t->token_id("<|endoftext|>"), 300);
  EXPECT_EQ(t->decode_token(300), "<|endoftext|>");
  EXPECT_EQ(t->decode_token(303), "  ");
  const std::string text = "hello<|endoftext|>  abc world";
  EXPECT_EQ(t->decode(t->encode(text)), text);
}

TEST(BpeTokenizer, AddedTokenStripAndSingleWord) {
  json j = gpt2_json(byte_vocab(), json::array());
  j["added_tokens"] = {{{"id", 256},
                        {"content", "<mask>"},
                        {"lstrip", true},
                        {"rstrip", false},
                        {"single_word", false},
                        {"normalized", false},
                        {"special", true}},
                       {{"id", 257},
                        {"content", "<r>"},
                        {"lstrip", false},
                        {"rstrip", true},
                        {"single_word", false},
                        {"normalized", false},
                        {"special", true}},
                       {{"id", 258},
                        {"content", "ab"},
                        {"lstrip", false},
                        {"rstrip", false},
                        {"single_word", true},
                        {"normalized", true},
                        {"special", false}}};
  TempDir dir;
  auto t = load(dir, j);
  EXPECT_EQ(t->encode("a  <mask>b"), (Ids{'a', 256, 'b'}));
  EXPECT_EQ(t->encode("<r>  b"), (Ids{257, 'b'}));
  EXPECT_EQ(t->encode("ab cab"), (Ids{258, ' ', 'c', 'a', 'b'}));
}

TEST(BpeTokenizer, RoundTripsAnyText) {
  TempDir dir;
  auto t = load(dir, gpt2_json(hello_vocab(), kHelloMerges));
  const std::string texts[] = {
      "Hello, world! It's 2024.\n\tTabs  and   spaces  ",
      "h\xc3\xa9llo w\xc3\xb6rld \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",  // héllo wörld
                                                                                      // — 日本語
      "\xf0\x9f\x91\x8b\xf0\x9f\x8f\xbd hi \xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9 ok",  // 👋🏽
                                                                                              // 👨‍👩
      std::string("nul\0byte \xff\xfe broken \xc3", 20),
  };
  for (const std::string& s : texts) EXPECT_EQ(t->decode(t->encode(s)), s);
  // A multi-byte character without a merge is one token per byte, each a partial sequence.
  const Ids e = t->encode("\xc3\xa9");
  ASSERT_EQ(e, (Ids{0xC3, 0xA9}));
  EXPECT_EQ(t->decode_token(e[0]), "\xc3");
  EXPECT_THROW(t->decode_token(263), Error);
  EXPECT_THROW(t->decode_token(-1), Error);
}

TEST(BpeTokenizer, SplitSequenceMatchesByteLevelRegex) {
  json j = gpt2_json(hello_vocab(), kHelloMerges);
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"},
         {"pattern",
          {{"Regex",
            R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)"}}},
         {"behavior", "Isolated"},
         {"invert", false}},
        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
  TempDir d1, d2;
  auto seq = load(d1, j);
  auto plain = load(d2, gpt2_json(hello_vocab(), kHelloMerges));
  for (const char* s : {"hello world", "hello  hello\n\nworld's", "x hellohello 12"})
    EXPECT_EQ(seq->encode(s), plain->encode(s)) << s;
}

TEST(BpeTokenizer, AddPrefixSpace) {
  json j = gpt2_json(hello_vocab(), kHelloMerges);
  j["pre_tokenizer"]["add_prefix_space"] = true;
  TempDir dir;
  auto t = load(dir, j);
  EXPECT_EQ(t->encode("world"), (Ids{262, 'l', 'd'}));
  EXPECT_EQ(t->encode(" world"), (Ids{262, 'l', 'd'}));
}

TEST(BpeTokenizer, UnknownBytes) {
  json v = {{"<unk>", 0}, {"a", 1}, {"b", 2}, {"Ġ", 3}};
  json j = gpt2_json(v, json::array());
  j["model"]["unk_token"] = "<unk>";
  TempDir d1, d2, d3;
  EXPECT_EQ(load(d1, j)->encode("a!!b"), (Ids{1, 0, 0, 2}));
  j["model"]["fuse_unk"] = true;
  EXPECT_EQ(load(d2, j)->encode("a!!b !"), (Ids{1, 0, 2, 3, 0}));
  j["model"]["unk_token"] = nullptr;
  auto no_unk = load(d3, j);
  EXPECT_EQ(no_unk->encode("ab"), (Ids{1, 2}));
  try {
    no_unk->encode("a!");
    ADD_FAILURE() << "encoded a byte without a token";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unk_token"), std::string::npos) << e.what();
  }
}

TEST(BpeTokenizer, MalformedFilesNameThePath) {
  const json good = gpt2_json(hello_vocab(), kHelloMerges);
  auto with = [&](const std::function<void(json&)>& edit) {
    json j = good;
    edit(j);
    return j.dump();
  };
  EXPECT_NE(load_error("{not json").find("invalid JSON"), std::string::npos);
  load_error("[1, 2]");
  EXPECT_NE(load_error("{}").find("model"), std::string::npos);
  EXPECT_NE(load_error(with([](json& j) { j["model"]["type"] = "WordPiece"; })).find("WordPiece"),
            std::string::npos);
  EXPECT_NE(
      load_error(with([](json& j) { j["model"]["byte_fallback"] = true; })).find("byte_fallback"),
      std::string::npos);
  EXPECT_NE(load_error(with([](json& j) { j["model"].erase("vocab"); })).find("vocab"),
            std::string::npos);
  EXPECT_NE(load_error(with([](json& j) { j["model"].erase("merges"); })).find("merges"),
            std::string::npos);
  load_error(with([](json& j) { j["model"]["merges"] = {"h e", 7}; }));
  load_error(with([](json& j) { j["model"]["merges"] = {"h e l"}; }));
  load_error(with([](json& j) { j["model"]["vocab"]["bad"] = -3; }));
  load_error(with([](json& j) { j["model"]["vocab"]["bad"] = "x"; }));
  load_error(with([](json& j) { j["model"]["unk_token"] = "<missing>"; }));
  EXPECT_NE(load_error(with([](json& j) {
              j["normalizer"] = {{"type", "Lowercase"}};
            })).find("Lowercase"),
            std::string::npos);
  EXPECT_NE(load_error(with([](json& j) {
              j["pre_tokenizer"] = {{"type", "Whitespace"}};
            })).find("Whitespace"),
            std::string::npos);
  load_error(with([](json& j) { j["pre_tokenizer"] = nullptr; }));
  load_error(with([](json& j) {
    j["pre_tokenizer"] = {
        {"type", "Split"}, {"pattern", {{"Regex", "\\w+"}}}, {"behavior", "Isolated"}};
  }));
  EXPECT_NE(load_error(with([](json& j) {
              j["decoder"] = {{"type", "WordPiece"}};
            })).find("WordPiece"),
            std::string::npos);
  load_error(with([](json& j) { j["added_tokens"] = {{{"id", 5}}}; }));  // no content
  EXPECT_THROW(BpeTokenizer::from_file("/nonexistent/dir/tokenizer.json"), Error);
}

TEST(LoadTokenizer, PicksBpeWhenTokenizerJsonExists) {
  TempDir bpe_dir, plain_dir, sp_dir;
  bpe_dir.write("tokenizer.json", gpt2_json(hello_vocab(), kHelloMerges).dump());
  auto t = load_tokenizer(bpe_dir.path.string());
  EXPECT_EQ(t->name(), "bpe");
  EXPECT_EQ(t->encode("hello"), (Ids{259}));
  EXPECT_EQ(load_tokenizer(plain_dir.path.string())->name(), "byte");
  sp_dir.write("tokenizer.model", "not really sentencepiece");
  EXPECT_THROW(load_tokenizer(sp_dir.path.string()), Error);
}

}  // namespace
}  // namespace pf
