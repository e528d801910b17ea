#include "data/bpe_tokenizer.h"

#include <locale.h>
#include <wctype.h>

#include <algorithm>
#include <climits>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>

#include "base/error.h"
#include "io/config_json.h"
#include "io/read_file.h"

namespace pf {

namespace {
using nlohmann::json;

// The GPT-2 pattern as tokenizer.json spells it (after JSON unescaping).
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Pre-tokens longer than this are not cached (long runs are rare and would bloat the cache).
constexpr size_t kMaxCachedPiece = 256;
constexpr size_t kMaxCacheEntries = 1 << 16;

// Code point given to bytes that do not start a valid UTF-8 sequence.
constexpr uint32_t kInvalidCp = 0xFFFFFFFFu;

// Decodes the code point at s[i] into cp and returns its length in bytes; an invalid or
// truncated sequence gives kInvalidCp and length 1, so every byte is kept.
size_t decode_utf8(const std::string& s, size_t i, uint32_t& cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  size_t len = 0;
  uint32_t v = 0, min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, v = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, v = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, v = b0 & 0x07, min = 0x10000;
  } else {
    cp = kInvalidCp;
    return 1;
  }
  cp = kInvalidCp;
  if (i + len > s.size()) return 1;
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 1;
    v = (v << 6) | (b & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 1;
  cp = v;
  return len;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

struct CpRange {
  uint32_t lo, hi;
};

// Non-ASCII code points of general category N (Nd, Nl, No), Unicode 14, generated from the
// Unicode character database.
// clang-format off
constexpr CpRange kNumbers[] = {
    {0xB2, 0xB3}, {0xB9, 0xB9}, {0xBC, 0xBE}, {0x660, 0x669}, {0x6F0, 0x6F9}, {0x7C0, 0x7C9},
    {0x966, 0x96F}, {0x9E6, 0x9EF}, {0x9F4, 0x9F9}, {0xA66, 0xA6F}, {0xAE6, 0xAEF},
    {0xB66, 0xB6F}, {0xB72, 0xB77}, {0xBE6, 0xBF2}, {0xC66, 0xC6F}, {0xC78, 0xC7E},
    {0xCE6, 0xCEF}, {0xD58, 0xD5E}, {0xD66, 0xD78}, {0xDE6, 0xDEF}, {0xE50, 0xE59},
    {0xED0, 0xED9}, {0xF20, 0xF33}, {0x1040, 0x1049}, {0x1090, 0x1099}, {0x1369, 0x137C},
    {0x16EE, 0x16F0}, {0x17E0, 0x17E9}, {0x17F0, 0x17F9}, {0x1810, 0x1819}, {0x1946, 0x194F},
    {0x19D0, 0x19DA}, {0x1A80, 0x1A89}, {0x1A90, 0x1A99}, {0x1B50, 0x1B59}, {0x1BB0, 0x1BB9},
    {0x1C40, 0x1C49}, {0x1C50, 0x1C59}, {0x2070, 0x2070}, {0x2074, 0x2079}, {0x2080, 0x2089},
    {0x2150, 0x2182}, {0x2185, 0x2189}, {0x2460, 0x249B}, {0x24EA, 0x24FF}, {0x2776, 0x2793},
    {0x2CFD, 0x2CFD}, {0x3007, 0x3007}, {0x3021, 0x3029}, {0x3038, 0x303A}, {0x3192, 0x3195},
    {0x3220, 0x3229}, {0x3248, 0x324F}, {0x3251, 0x325F}, {0x3280, 0x3289}, {0x32B1, 0x32BF},
    {0xA620, 0xA629}, {0xA6E6, 0xA6EF}, {0xA830, 0xA835}, {0xA8D0, 0xA8D9}, {0xA900, 0xA909},
    {0xA9D0, 0xA9D9}, {0xA9F0, 0xA9F9}, {0xAA50, 0xAA59}, {0xABF0, 0xABF9}, {0xFF10, 0xFF19},
    {0x10107, 0x10133}, {0x10140, 0x10178}, {0x1018A, 0x1018B}, {0x102E1, 0x102FB},
    {0x10320, 0x10323}, {0x10341, 0x10341}, {0x1034A, 0x1034A}, {0x103D1, 0x103D5},
    {0x104A0, 0x104A9}, {0x10858, 0x1085F}, {0x10879, 0x1087F}, {0x108A7, 0x108AF},
    {0x108FB, 0x108FF}, {0x10916, 0x1091B}, {0x109BC, 0x109BD}, {0x109C0, 0x109CF},
    {0x109D2, 0x109FF}, {0x10A40, 0x10A48}, {0x10A7D, 0x10A7E}, {0x10A9D, 0x10A9F},
    {0x10AEB, 0x10AEF}, {0x10B58, 0x10B5F}, {0x10B78, 0x10B7F}, {0x10BA9, 0x10BAF},
    {0x10CFA, 0x10CFF}, {0x10D30, 0x10D39}, {0x10E60, 0x10E7E}, {0x10F1D, 0x10F26},
    {0x10F51, 0x10F54}, {0x10FC5, 0x10FCB}, {0x11052, 0x1106F}, {0x110F0, 0x110F9},
    {0x11136, 0x1113F}, {0x111D0, 0x111D9}, {0x111E1, 0x111F4}, {0x112F0, 0x112F9},
    {0x11450, 0x11459}, {0x114D0, 0x114D9}, {0x11650, 0x11659}, {0x116C0, 0x116C9},
    {0x11730, 0x1173B}, {0x118E0, 0x118F2}, {0x11950, 0x11959}, {0x11C50, 0x11C6C},
    {0x11D50, 0x11D59}, {0x11DA0, 0x11DA9}, {0x11FC0, 0x11FD4}, {0x12400, 0x1246E},
    {0x16A60, 0x16A69}, {0x16AC0, 0x16AC9}, {0x16B50, 0x16B59}, {0x16B5B, 0x16B61},
    {0x16E80, 0x16E96}, {0x1D2E0, 0x1D2F3}, {0x1D360, 0x1D378}, {0x1D7CE, 0x1D7FF},
    {0x1E140, 0x1E149}, {0x1E2F0, 0x1E2F9}, {0x1E8C7, 0x1E8CF}, {0x1E950, 0x1E959},
    {0x1EC71, 0x1ECAB}, {0x1ECAD, 0x1ECAF}, {0x1ECB1, 0x1ECB4}, {0x1ED01, 0x1ED2D},
    {0x1ED2F, 0x1ED3D}, {0x1F100, 0x1F10C}, {0x1FBF0, 0x1FBF9},
};
// clang-format on

// Code points glibc's iswalpha (C.UTF-8, glibc 2.36, Unicode 14) accepts that are not letters:
// "Alphabetic" marks such as Indic vowel signs and Hebrew points, and circled or squared
// letters. Generated; the gaps between listed code points hold no alphabetic ones.
// clang-format off
constexpr CpRange kAlphabeticNonLetters[] = {
    {0x345, 0x345}, {0x5B0, 0x5C7}, {0x610, 0x61A}, {0x64B, 0x65F}, {0x670, 0x670},
    {0x6D6, 0x6E4}, {0x6E7, 0x6ED}, {0x711, 0x711}, {0x730, 0x73F}, {0x7A6, 0x7B0},
    {0x816, 0x817}, {0x81B, 0x823}, {0x825, 0x827}, {0x829, 0x82C}, {0x8D4, 0x903},
    {0x93A, 0x93B}, {0x93E, 0x94F}, {0x955, 0x957}, {0x962, 0x963}, {0x981, 0x983},
    {0x9BE, 0x9CC}, {0x9D7, 0x9D7}, {0x9E2, 0x9E3}, {0xA01, 0xA03}, {0xA3E, 0xA51},
    {0xA70, 0xA71}, {0xA75, 0xA83}, {0xABE, 0xACC}, {0xAE2, 0xAE3}, {0xAFA, 0xB03},
    {0xB3E, 0xB57}, {0xB62, 0xB63}, {0xB82, 0xB82}, {0xBBE, 0xBCC}, {0xBD7, 0xBD7},
    {0xC00, 0xC03}, {0xC3E, 0xC56}, {0xC62, 0xC63}, {0xC81, 0xC83}, {0xCBE, 0xCD6},
    {0xCE2, 0xCE3}, {0xD00, 0xD03}, {0xD3E, 0xD4C}, {0xD57, 0xD57}, {0xD62, 0xD63},
    {0xD81, 0xD83}, {0xDCF, 0xDDF}, {0xDF2, 0xDF3}, {0xE31, 0xE31}, {0xE34, 0xE3A},
    {0xE4D, 0xE4D}, {0xEB1, 0xEB1}, {0xEB4, 0xEBC}, {0xECD, 0xECD}, {0xF71, 0xF81},
    {0xF8D, 0xFBC}, {0x102B, 0x103E}, {0x1056, 0x1059}, {0x105E, 0x1060}, {0x1062, 0x1064},
    {0x1067, 0x106D}, {0x1071, 0x1074}, {0x1082, 0x108D}, {0x108F, 0x108F}, {0x109A, 0x109D},
    {0x1712, 0x1713}, {0x1732, 0x1733}, {0x1752, 0x1753}, {0x1772, 0x1773}, {0x17B6, 0x17C8},
    {0x1885, 0x1886}, {0x18A9, 0x18A9}, {0x1920, 0x1938}, {0x1A17, 0x1A1B}, {0x1A55, 0x1A74},
    {0x1ABF, 0x1B04}, {0x1B35, 0x1B43}, {0x1B80, 0x1B82}, {0x1BA1, 0x1BAD}, {0x1BE7, 0x1BF1},
    {0x1C24, 0x1C36}, {0x1DE7, 0x1DF4}, {0x24B6, 0x24E9}, {0x2DE0, 0x2DFF}, {0xA674, 0xA67B},
    {0xA69E, 0xA69F}, {0xA802, 0xA802}, {0xA80B, 0xA80B}, {0xA823, 0xA827}, {0xA880, 0xA881},
    {0xA8B4, 0xA8C5}, {0xA8FF, 0xA8FF}, {0xA926, 0xA92A}, {0xA947, 0xA952}, {0xA980, 0xA983},
    {0xA9B4, 0xA9BF}, {0xA9E5, 0xA9E5}, {0xAA29, 0xAA36}, {0xAA43, 0xAA43}, {0xAA4C, 0xAA4D},
    {0xAA7B, 0xAA7D}, {0xAAB0, 0xAAB0}, {0xAAB2, 0xAAB4}, {0xAAB7, 0xAAB8}, {0xAABE, 0xAABE},
    {0xAAEB, 0xAAEF}, {0xAAF5, 0xAAF5}, {0xABE3, 0xABEA}, {0xFB1E, 0xFB1E}, {0x10376, 0x1037A},
    {0x10A01, 0x10A0F}, {0x10D24, 0x10D27}, {0x10EAB, 0x10EAC}, {0x11000, 0x11002},
    {0x11038, 0x11045}, {0x11073, 0x11074}, {0x11082, 0x11082}, {0x110B0, 0x110C2},
    {0x11100, 0x11102}, {0x11127, 0x11132}, {0x11145, 0x11146}, {0x11180, 0x11182},
    {0x111B3, 0x111BF}, {0x111CE, 0x111CF}, {0x1122C, 0x1123E}, {0x112DF, 0x112E8},
    {0x11300, 0x11303}, {0x1133E, 0x1134C}, {0x11357, 0x11357}, {0x11362, 0x11363},
    {0x11435, 0x11445}, {0x114B0, 0x114C1}, {0x115AF, 0x115BE}, {0x115DC, 0x115DD},
    {0x11630, 0x11640}, {0x116AB, 0x116B5}, {0x1171D, 0x1172A}, {0x1182C, 0x11838},
    {0x11930, 0x1193C}, {0x11940, 0x11940}, {0x11942, 0x11942}, {0x119D1, 0x119DF},
    {0x119E4, 0x119E4}, {0x11A01, 0x11A0A}, {0x11A35, 0x11A39}, {0x11A3B, 0x11A3E},
    {0x11A51, 0x11A5B}, {0x11A8A, 0x11A97}, {0x11C2F, 0x11C3E}, {0x11C92, 0x11CB6},
    {0x11D31, 0x11D43}, {0x11D47, 0x11D47}, {0x11D8A, 0x11D96}, {0x11EF3, 0x11EF6},
    {0x16F4F, 0x16F4F}, {0x16F51, 0x16F92}, {0x16FF0, 0x16FF1}, {0x1BC9E, 0x1BC9E},
    {0x1E000, 0x1E02A}, {0x1E947, 0x1E947}, {0x1F130, 0x1F189},
};
// clang-format on

// Fallback without a UTF-8 locale: blocks of punctuation and symbols, taken as non-letters.
// clang-format off
constexpr CpRange kNonLetterBlocks[] = {
    {0x80, 0xA9}, {0xAB, 0xB4}, {0xB6, 0xB9}, {0xBB, 0xBF}, {0xD7, 0xD7}, {0xF7, 0xF7},
    {0x2000, 0x2BFF}, {0x3000, 0x3004}, {0x3008, 0x3020}, {0x3030, 0x3030}, {0x303D, 0x303F},
    {0xE000, 0xF8FF}, {0xFE10, 0xFE1F}, {0xFE30, 0xFE6F}, {0xFF00, 0xFF20}, {0xFF3B, 0xFF40},
    {0xFF5B, 0xFF65}, {0x1F000, 0x1FBFF},
};
// clang-format on

template <size_t N>
bool in_ranges(const CpRange (&ranges)[N], uint32_t cp) {
  const CpRange* it = std::upper_bound(ranges, ranges + N, cp,
                                       [](uint32_t v, const CpRange& r) { return v < r.lo; });
  return it != ranges && cp <= (it - 1)->hi;
}

// Unicode White_Space, which is what \s matches in the tokenizers library's regex engine.
bool is_white_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

// A locale whose iswalpha knows Unicode letters, or nullptr (then the block table is used).
locale_t open_unicode_locale() {
  for (const char* name : {"C.UTF-8", "C.utf8", "en_US.UTF-8"}) {
    locale_t loc = newlocale(LC_CTYPE_MASK, name, static_cast<locale_t>(nullptr));
    if (!loc) continue;
    // Some C libraries accept the name but only classify ASCII; check a few letters.
    if (iswalpha_l(0xE9, loc) && iswalpha_l(0x65E5, loc) && !iswalpha_l(0x1F600, loc))
      return loc;  // kept for the life of the process
    freelocale(loc);
  }
  return nullptr;
}

}  // namespace

const std::array<uint32_t, 256>& byte_to_unicode() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      t[b] = printable ? b : next++;
    }
    return t;
  }();
  return table;
}

CharClass char_class(uint32_t cp) {
  if (cp < 0x80) {
    if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return CharClass::kLetter;
    if (cp >= '0' && cp <= '9') return CharClass::kNumber;
    return is_white_space(cp) ? CharClass::kSpace : CharClass::kOther;
  }
  if (cp > 0x10FFFF) return CharClass::kOther;
  if (is_white_space(cp)) return CharClass::kSpace;
  if (in_ranges(kNumbers, cp)) return CharClass::kNumber;
  if (in_ranges(kAlphabeticNonLetters, cp)) return CharClass::kOther;
  static const locale_t loc = open_unicode_locale();
  if (loc) return iswalpha_l(static_cast<wint_t>(cp), loc) ? CharClass::kLetter : CharClass::kOther;
  return in_ranges(kNonLetterBlocks, cp) ? CharClass::kOther : CharClass::kLetter;
}

std::vector<std::string> gpt2_pre_split(const std::string& text) {
  struct Char {
    uint32_t cp;
    size_t offset;
    CharClass cls;
  };
  std::vector<Char> cs;
  cs.reserve(text.size() + 1);
  for (size_t i = 0; i < text.size();) {
    uint32_t cp = 0;
    const size_t len = decode_utf8(text, i, cp);
    cs.push_back({cp, i, char_class(cp)});
    i += len;
  }
  const size_t n = cs.size();
  cs.push_back({0, text.size(), CharClass::kOther});  // sentinel: offset of the end
  auto run_end = [&](size_t k, CharClass cls) {
    while (k < n && cs[k].cls == cls) ++k;
    return k;
  };
  // End (in chars) of the match starting at i; the alternatives are tried in pattern order.
  auto match = [&](size_t i) -> size_t {
    if (cs[i].cp == '\'' && i + 1 < n) {
      const uint32_t a = cs[i + 1].cp, b = i + 2 < n ? cs[i + 2].cp : 0;
      if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    }
    // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": an optional space, then a run of one class.
    const size_t s = (cs[i].cp == ' ' && i + 1 < n) ? i + 1 : i;
    if (cs[s].cls != CharClass::kSpace) return run_end(s, cs[s].cls);
    // "\s+(?!\S)" backs off one char so the last space can lead the next word; "\s+" takes a
    // lone space before a word.
    const size_t j = run_end(i, CharClass::kSpace);
    return (j == n || j - i == 1) ? j : j - 1;
  };
  std::vector<std::string> pieces;
  for (size_t i = 0; i < n;) {
    const size_t j = match(i);
    pieces.push_back(text.substr(cs[i].offset, cs[j].offset - cs[i].offset));
    i = j;
  }
  return pieces;
}

namespace {

// A JSON field, or null when it is missing.
const json& field(const json& j, const char* key) {
  static const json null_json;
  auto it = j.find(key);
  return it == j.end() ? null_json : *it;
}

// A boolean field; missing or null gives the default.
bool flag(const json& j, const char* key, bool def) {
  const json& v = field(j, key);
  return v.is_null() ? def : v.get<bool>();
}

std::string type_of(const json& j) {
  const json& t = field(j, "type");
  return t.is_string() ? t.get<std::string>() : std::string("(none)");
}

bool is_word_char(uint32_t cp) {
  const CharClass c = char_class(cp);
  return c == CharClass::kLetter || c == CharClass::kNumber || cp == '_';
}

// Start of the code point that ends just before pos (pos > 0).
size_t prev_char_start(const std::string& s, size_t pos) {
  size_t k = pos - 1;
  while (k > 0 && pos - k < 4 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
  return k;
}

}  // namespace

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_file(const std::string& tokenizer_json_path) {
  std::unique_ptr<BpeTokenizer> t(new BpeTokenizer());
  t->load(tokenizer_json_path);
  return t;
}

void BpeTokenizer::load(const std::string& path) {
  path_ = path;
  // Bounded nesting: the normalizer and pre-tokenizer checks below recurse.
  const json j = parse_json(read_file(path, uint64_t{1} << 30), path);
  PF_CHECK(j.is_object(), path, ": expected a JSON object at the top level");
  // Type errors inside a present field (a string where a number belongs) surface here.
  try {
    PF_CHECK(j.contains("model"), path, ": no \"model\" object");
    load_model(j.at("model"));
    load_added_tokens(field(j, "added_tokens"));

    std::function<void(const json&)> check_normalizer = [&](const json& n) {
      if (n.is_null() || type_of(n) == "NFC") return;  // NFC input assumed: identity
      if (type_of(n) == "Sequence") {
        for (const json& x : n.at("normalizers")) check_normalizer(x);
        return;
      }
      fail(path, ": normalizer '", type_of(n),
           "' is not supported (only none or NFC, which is taken as the identity)");
    };
    check_normalizer(field(j, "normalizer"));
    load_pre_tokenizer(field(j, "pre_tokenizer"));
    const json& dec = field(j, "decoder");
    PF_CHECK(dec.is_null() || type_of(dec) == "ByteLevel", path, ": decoder '", type_of(dec),
             "' is not supported (only ByteLevel)");
    // post_processor is ignored: encode() adds no BOS/EOS; ByteLevel's only trims offsets.
  } catch (const json::exception& e) {
    fail(path, ": malformed tokenizer.json (", e.what(), ")");
  }
}

void BpeTokenizer::load_model(const json& m) {
  PF_CHECK(m.is_object(), path_, ": \"model\" is not an object");
  if (m.contains("type"))
    PF_CHECK(type_of(m) == "BPE", path_, ": model type '", type_of(m),
             "' is not supported (only BPE)");
  PF_CHECK(!flag(m, "byte_fallback", false), path_,
           ": BPE with byte_fallback is not supported (only byte-level BPE)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const json& v = field(m, key);
    PF_CHECK(v.is_null() || v.get<std::string>().empty(), path_, ": BPE ", key,
             " is not supported");
  }
  // "dropout" only matters when training a tokenizer; encoding here is deterministic.
  fuse_unk_ = flag(m, "fuse_unk", false);
  ignore_merges_ = flag(m, "ignore_merges", false);

  const json& vocab = field(m, "vocab");
  PF_CHECK(vocab.is_object(), path_, ": model has no \"vocab\" object");
  int64_t max_id = -1;
  for (const auto& [token, idj] : vocab.items()) {
    PF_CHECK(idj.is_number_integer() && idj.get<int64_t>() >= 0 && idj.get<int64_t>() <= INT32_MAX,
             path_, ": vocab entry '", token, "' has id ", idj.dump(),
             ", not a non-negative integer");
    const auto id = idj.get<int32_t>();
    vocab_.emplace(token, id);
    max_id = std::max<int64_t>(max_id, id);
  }
  PF_CHECK(max_id < (int64_t{1} << 24), path_, ": vocab id ", max_id, " is beyond 2^24 entries");
  {
    // Two tokens with one id could not both be decoded.
    std::vector<const std::string*> owner(static_cast<size_t>(max_id + 1), nullptr);
    for (const auto& [token, id] : vocab_) {
      PF_CHECK(owner[id] == nullptr, path_, ": vocab entries '", *owner[id], "' and '", token,
               "' share the id ", id);
      owner[id] = &token;
    }
  }
  PF_CHECK(max_id >= 0, path_, ": the vocab is empty");
  vocab_size_ = max_id + 1;

  const json& merges = field(m, "merges");
  PF_CHECK(merges.is_array(), path_, ": model has no \"merges\" list");
  int32_t rank = 0;
  for (const json& mj : merges) {
    std::string a, b;
    if (mj.is_string()) {
      const auto s = mj.get<std::string>();
      const size_t sp = s.find(' ');
      PF_CHECK(sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos, path_,
               ": merge ", rank, " '", s, "' is not two tokens separated by one space");
      a = s.substr(0, sp), b = s.substr(sp + 1);
    } else if (mj.is_array() && mj.size() == 2 && mj[0].is_string() && mj[1].is_string()) {
      a = mj[0].get<std::string>(), b = mj[1].get<std::string>();
    } else {
      fail(path_, ": merge ", rank, " is neither \"a b\" nor [\"a\", \"b\"]: ", mj.dump());
    }
    const int32_t this_rank = rank++;
    // A merge naming a token outside the vocab means the file is damaged or mismatched.
    auto ia = vocab_.find(a), ib = vocab_.find(b), iab = vocab_.find(a + b);
    PF_CHECK(ia != vocab_.end() && ib != vocab_.end() && iab != vocab_.end(), path_, ": merge ",
             this_rank, " ('", a, "' + '", b, "') names a token that is not in the vocab ('",
             ia == vocab_.end()   ? a
             : ib == vocab_.end() ? b
                                  : a + b,
             "')");
    const uint64_t key =
        (uint64_t{static_cast<uint32_t>(ia->second)} << 32) | static_cast<uint32_t>(ib->second);
    merges_.try_emplace(key,
                        Merge{this_rank, iab->second});  // a repeated pair keeps its first rank
  }

  const json& unk = field(m, "unk_token");
  if (!unk.is_null()) {
    auto it = vocab_.find(unk.get<std::string>());
    PF_CHECK(it != vocab_.end(), path_, ": unk_token '", unk.get<std::string>(),
             "' is not in the vocab");
    unk_id_ = it->second;
  }

  const auto& b2u = byte_to_unicode();
  std::array<int, 324> u2b;  // mapped code point -> byte; the map's image is [0x21, 0x143]
  u2b.fill(-1);
  for (int b = 0; b < 256; ++b) {
    u2b[b2u[b]] = b;
    byte_chars_[b].clear();
    append_utf8(byte_chars_[b], b2u[b]);
    auto it = vocab_.find(byte_chars_[b]);
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
  }
  id_bytes_.assign(vocab_size_, std::string());
  id_known_.assign(vocab_size_, 0);
  for (const auto& [token, id] : vocab_) {
    // Like the ByteLevel decoder: a token with a char outside the map keeps its own bytes.
    std::string bytes;
    bool mapped = true;
    for (size_t i = 0; i < token.size() && mapped;) {
      uint32_t cp = 0;
      i += decode_utf8(token, i, cp);
      mapped = cp < u2b.size() && u2b[cp] >= 0;
      if (mapped) bytes += static_cast<char>(u2b[cp]);
    }
    id_bytes_[id] = mapped ? bytes : token;
    id_known_[id] = 1;
  }
}

bool BpeTokenizer::is_added(int32_t id) const {
  for (const AddedToken& t : added_)
    if (t.id == id) return true;
  return false;
}

void BpeTokenizer::load_added_tokens(const json& added) {
  if (added.is_null()) return;
  PF_CHECK(added.is_array(), path_, ": \"added_tokens\" is not a list");
  for (const json& t : added) {
    AddedToken a;
    const auto id = t.at("id").get<int64_t>();
    PF_CHECK(id >= 0 && id < (int64_t{1} << 24), path_, ": added token id ", id,
             " is out of range [0, 2^24)");
    a.id = static_cast<int32_t>(id);
    a.content = t.at("content").get<std::string>();
    PF_CHECK(!a.content.empty(), path_, ": added token ", id, " has empty content");
    a.special = flag(t, "special", false);
    a.single_word = flag(t, "single_word", false);
    a.lstrip = flag(t, "lstrip", false);
    a.rstrip = flag(t, "rstrip", false);
    a.normalized = flag(t, "normalized", !a.special);
    // An added token may repeat its vocab entry, but not take another token's id.
    if (a.id < vocab_size_ && id_known_[a.id])
      for (const AddedToken& prev : added_)
        PF_CHECK(prev.id != a.id || prev.content == a.content, path_, ": added tokens '",
                 prev.content, "' and '", a.content, "' share the id ", a.id);
    if (a.id < vocab_size_ && id_known_[a.id] && !is_added(a.id)) {
      auto it = vocab_.find(a.content);
      PF_CHECK(it != vocab_.end() && it->second == a.id, path_, ": added token '", a.content,
               "' takes the id ", a.id, " of another vocab entry");
    }
    if (a.special) special_ids_.push_back(a.id);
    if (a.id >= vocab_size_) {
      vocab_size_ = int64_t{a.id} + 1;
      id_bytes_.resize(vocab_size_);
      id_known_.resize(vocab_size_, 0);
    }
    id_bytes_[a.id] = a.content;  // added tokens decode to their content
    id_known_[a.id] = 1;
    added_.push_back(std::move(a));
  }
  // Candidates per first byte, longest first, so matching takes the longest at a position.
  for (uint32_t i = 0; i < added_.size(); ++i)
    added_by_byte_[static_cast<unsigned char>(added_[i].content[0])].push_back(i);
  for (auto& list : added_by_byte_)
    std::stable_sort(list.begin(), list.end(), [&](uint32_t x, uint32_t y) {
      return added_[x].content.size() > added_[y].content.size();
    });
}

void BpeTokenizer::load_pre_tokenizer(const json& pre) {
  PF_CHECK(!pre.is_null(), path_,
           ": no pre_tokenizer; byte-level BPE needs a ByteLevel pre-tokenizer");
  bool byte_level = false;
  std::function<void(const json&)> add = [&](const json& p) {
    const std::string type = type_of(p);
    if (type == "Sequence") {
      for (const json& x : p.at("pretokenizers")) add(x);
      return;
    }
    PF_CHECK(!byte_level, path_, ": pre-tokenizer '", type, "' after ByteLevel is not supported");
    if (type == "ByteLevel") {
      byte_level = true;
      // trim_offsets only changes offsets, which are not kept.
      if (flag(p, "add_prefix_space", true)) pre_steps_.push_back(PreStep::kPrefixSpace);
      if (flag(p, "use_regex", true)) pre_steps_.push_back(PreStep::kGpt2Split);
    } else if (type == "Split") {
      const json& pat = field(p, "pattern");
      const json& regex = pat.is_object() ? field(pat, "Regex") : pat;
      PF_CHECK(regex.is_string() && regex.get<std::string>() == kGpt2Pattern, path_,
               ": Split pre-tokenizer pattern ", pat.dump(),
               " is not supported (only the GPT-2 regex)");
      const json& behavior = field(p, "behavior");
      PF_CHECK(behavior.is_string() && behavior.get<std::string>() == "Isolated", path_,
               ": Split behavior ", behavior.dump(), " is not supported (only Isolated)");
      PF_CHECK(!flag(p, "invert", false), path_, ": Split with invert=true is not supported");
      pre_steps_.push_back(PreStep::kGpt2Split);
    } else {
      fail(path_, ": pre-tokenizer '", type,
           "' is not supported (only ByteLevel, and Split with the GPT-2 regex)");
    }
  };
  add(pre);
  PF_CHECK(byte_level, path_,
           ": the pre_tokenizer has no ByteLevel step; only byte-level BPE is supported");
}

std::vector<BpeTokenizer::Segment> BpeTokenizer::split_added(const std::string& text,
                                                             bool normalized) const {
  std::vector<Segment> out;
  size_t start = 0;  // beginning of the plain text not yet emitted
  for (size_t i = 0; i < text.size();) {
    const AddedToken* hit = nullptr;
    for (uint32_t k : added_by_byte_[static_cast<unsigned char>(text[i])]) {
      const AddedToken& t = added_[k];
      if (t.normalized != normalized || text.compare(i, t.content.size(), t.content) != 0) continue;
      if (t.single_word) {
        // Only a whole word: no letter, digit or '_' touching either end.
        uint32_t cp = 0;
        if (i > 0 && (decode_utf8(text, prev_char_start(text, i), cp), is_word_char(cp))) continue;
        const size_t e = i + t.content.size();
        if (e < text.size() && (decode_utf8(text, e, cp), is_word_char(cp))) continue;
      }
      hit = &t;
      break;
    }
    if (!hit) {
      ++i;
      continue;
    }
    size_t b = i, e = i + hit->content.size();
    // lstrip/rstrip: the token swallows the white space beside it.
    uint32_t cp = 0;
    while (hit->lstrip && b > start) {
      const size_t p = prev_char_start(text, b);
      decode_utf8(text, p, cp);
      if (!is_white_space(cp)) break;
      b = p;
    }
    while (hit->rstrip && e < text.size()) {
      const size_t len = decode_utf8(text, e, cp);
      if (!is_white_space(cp)) break;
      e += len;
    }
    if (b > start) out.push_back({-1, text.substr(start, b - start)});
    out.push_back({hit->id, std::string()});
    start = i = e;
  }
  if (start < text.size()) out.push_back({-1, text.substr(start)});
  return out;
}

std::vector<std::string> BpeTokenizer::pre_tokenize(const std::string& text) const {
  std::vector<std::string> pieces{text};
  for (PreStep step : pre_steps_) {
    std::vector<std::string> next;
    for (std::string& p : pieces) {
      if (p.empty()) continue;
      if (step == PreStep::kPrefixSpace) {
        if (p[0] != ' ') p.insert(p.begin(), ' ');
        next.push_back(std::move(p));
      } else {
        for (std::string& q : gpt2_pre_split(p)) next.push_back(std::move(q));
      }
    }
    pieces = std::move(next);
  }
  return pieces;
}

std::vector<int32_t> BpeTokenizer::merge_symbols(const std::string& piece) const {
  // Symbols form a linked list; a merge folds the right symbol into the left one.
  struct Symbol {
    int32_t id, prev, next;  // id -1: merged away
  };
  std::vector<Symbol> syms;
  if (piece.empty()) return {};
  syms.reserve(piece.size());
  for (unsigned char byte : piece) {
    int32_t id = byte_ids_[byte];
    if (id < 0) {
      PF_CHECK(unk_id_.has_value(), path_, ": byte ", int{byte},
               " has no token in the vocab and there is no unk_token");
      if (fuse_unk_ && !syms.empty() && syms.back().id == *unk_id_) continue;
      id = *unk_id_;
    }
    const auto n = static_cast<int32_t>(syms.size());
    syms.push_back({id, n - 1, n + 1});
  }
  syms.back().next = -1;

  struct Candidate {
    int32_t rank, pos, left, right, merged;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;  // lowest rank, then leftmost
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto consider = [&](int32_t pos) {
    const int32_t nx = syms[pos].next;
    if (nx < 0) return;
    auto it = merges_.find((uint64_t{static_cast<uint32_t>(syms[pos].id)} << 32) |
                           static_cast<uint32_t>(syms[nx].id));
    if (it != merges_.end())
      queue.push({it->second.rank, pos, syms[pos].id, syms[nx].id, it->second.id});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(syms.size()); ++i) consider(i);
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& l = syms[c.pos];
    // Skip candidates made stale by an earlier merge of either side.
    if (l.id != c.left || l.next < 0 || syms[l.next].id != c.right) continue;
    Symbol& r = syms[l.next];
    l.id = c.merged;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = c.pos;
    r.id = -1;
    if (l.prev >= 0) consider(l.prev);
    consider(c.pos);
  }
  std::vector<int32_t> ids;
  for (int32_t k = 0; k >= 0; k = syms[k].next) ids.push_back(syms[k].id);
  return ids;
}

void BpeTokenizer::bpe_piece(const std::string& piece, std::vector<int32_t>& out) const {
  if (ignore_merges_) {
    // A pre-token that is itself in the vocab is taken whole, whatever the merges say.
    std::string mapped;
    for (unsigned char b : piece) mapped += byte_chars_[b];
    if (auto it = vocab_.find(mapped); it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  const bool cacheable = piece.size() <= kMaxCachedPiece;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (auto it = cache_.find(piece); it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids = merge_symbols(piece);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_.emplace(piece, std::move(ids));
  }
}

std::vector<int32_t> BpeTokenizer::encode(const std::string& text) const {
  std::vector<int32_t> ids;
  // Non-normalized added tokens (the special ones) are found in the raw text first, then
  // normalized ones in what is left, as the tokenizers library does.
  for (const Segment& seg : split_added(text, false)) {
    if (seg.added_id >= 0) {
      ids.push_back(seg.added_id);
      continue;
    }
    for (const Segment& sub : split_added(seg.text, true)) {
      if (sub.added_id >= 0) {
        ids.push_back(sub.added_id);
        continue;
      }
      for (const std::string& piece : pre_tokenize(sub.text)) bpe_piece(piece, ids);
    }
  }
  return ids;
}

std::string BpeTokenizer::decode_token(int32_t id) const {
  PF_CHECK(id >= 0 && id < vocab_size_, "bpe tokenizer: token id ", id, " is outside [0, ",
           vocab_size_, ")");
  PF_CHECK(id_known_[id], "bpe tokenizer: token id ", id, " has no entry in ", path_);
  return id_bytes_[id];
}

std::vector<int32_t> BpeTokenizer::unused_ids() const {
  std::vector<int32_t> out;
  for (int64_t i = 0; i < vocab_size_; ++i)
    if (!id_known_[i]) out.push_back(static_cast<int32_t>(i));
  return out;
}

std::optional<int32_t> BpeTokenizer::token_id(const std::string& token) const {
  for (const AddedToken& t : added_)
    if (t.content == token) return t.id;
  if (auto it = vocab_.find(token); it != vocab_.end()) return it->second;
  return std::nullopt;
}

std::vector<int32_t> BpeTokenizer::stop_ids() const {
  for (const char* eos : {"<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>"})
    if (auto id = token_id(eos)) return {*id};
  return {};
}

}  // namespace pf
