#include "serve/text_stream.h"

#include <algorithm>

namespace pf {

namespace {
// Bytes a UTF-8 sequence starting with lead byte c has (0 when c cannot start one).
int utf8_len(unsigned char c) {
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return 2;
  if (c >= 0xE0 && c <= 0xEF) return 3;
  if (c >= 0xF0 && c <= 0xF4) return 4;
  return 0;
}
bool is_cont(unsigned char c) { return (c & 0xC0) == 0x80; }

// Whether bytes s[i..i+n) are one valid sequence (no overlong form, surrogate or > U+10FFFF).
bool valid_seq(const std::string& s, size_t i, int n) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  for (int k = 1; k < n; ++k)
    if (!is_cont(b(k))) return false;
  if (n == 3 && b(0) == 0xE0 && b(1) < 0xA0) return false;  // overlong
  if (n == 3 && b(0) == 0xED && b(1) >= 0xA0) return false;  // surrogate
  if (n == 4 && b(0) == 0xF0 && b(1) < 0x90) return false;  // overlong
  if (n == 4 && b(0) == 0xF4 && b(1) >= 0x90) return false;  // > U+10FFFF
  return true;
}
}  // namespace

std::string sanitize_utf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const int n = utf8_len(static_cast<unsigned char>(s[i]));
    if (n > 0 && i + n <= s.size() && valid_seq(s, i, n)) {
      out.append(s, i, n);
      i += n;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
    }
  }
  return out;
}

size_t utf8_complete_prefix(const std::string& s) {
  // An unfinished character is a lead byte in the last 3 bytes whose continuation bytes
  // so far are valid but too few.
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const unsigned char c = static_cast<unsigned char>(s[n - back]);
    if (is_cont(c)) continue;
    const int len = utf8_len(c);
    if (len > static_cast<int>(back)) {
      for (size_t k = 1; k < back; ++k)
        if (!is_cont(static_cast<unsigned char>(s[n - back + k]))) return n;
      return n - back;
    }
    return n;
  }
  return n;
}

TextAssembler::TextAssembler(std::vector<std::string> stops) : stops_(std::move(stops)) {
  stops_.erase(std::remove(stops_.begin(), stops_.end(), std::string()), stops_.end());
}

std::string TextAssembler::push(const std::string& piece) {
  if (stopped_) return {};
  held_ += piece;
  size_t first = std::string::npos;
  for (const std::string& s : stops_) first = std::min(first, held_.find(s));
  if (first != std::string::npos) {
    stopped_ = true;
    std::string out = sanitize_utf8(held_.substr(0, first));
    held_.clear();
    return out;
  }
  // Hold the longest tail that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const std::string& s : stops_)
    for (size_t k = std::min(s.size() - 1, held_.size()); k > hold; --k)
      if (held_.compare(held_.size() - k, k, s, 0, k) == 0) {
        hold = k;
        break;
      }
  const size_t release = std::min(held_.size() - hold, utf8_complete_prefix(held_));
  std::string out = sanitize_utf8(held_.substr(0, release));
  held_.erase(0, release);
  return out;
}

std::string TextAssembler::flush() {
  std::string out = stopped_ ? std::string() : sanitize_utf8(held_);
  held_.clear();
  return out;
}

}  // namespace pf
