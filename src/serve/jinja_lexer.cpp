#include "serve/jinja_lexer.h"

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "base/error.h"
#include "serve/jinja_value.h"

namespace pf::jinja {

void fail_at(int line, int col, const std::string& msg) {
  fail("chat template line ", line, " col ", col, ": ", msg);
}

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }
int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Jinja first turns every \r\n and \r into \n and drops one trailing newline
// (keep_trailing_newline is off by default).
std::string normalize_newlines(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      out += '\n';
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else {
      out += s[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string describe_char(char c) {
  const unsigned char u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7F) return std::string("'") + c + "'";
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", u);
  return buf;
}

class Lexer {
 public:
  Lexer(const std::string& source, const LexOptions& options)
      : src_(normalize_newlines(source)), opt_(options) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
  }

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      const size_t start = find_tag(pos_);
      if (start == std::string::npos) {
        push_text(src_.substr(pos_));
        break;
      }
      const char kind = src_[start + 1];
      const char mod = start + 2 < src_.size() && (src_[start + 2] == '-' || src_[start + 2] == '+')
                           ? src_[start + 2]
                           : 0;
      std::string text = src_.substr(pos_, start - pos_);
      strip_before(text, mod, kind != '{', pos_ == 0 || src_[pos_ - 1] == '\n');
      push_text(std::move(text));
      pos_ = start + 2 + (mod ? 1 : 0);
      if (kind == '#') {
        lex_comment(start);
      } else if (kind == '%' && lex_raw(start)) {
        // the raw block became text
      } else {
        lex_tag(start, kind);
      }
    }
    push(Token::Kind::kEof, src_.size());
    return std::move(out_);
  }

 private:
  std::string src_;
  LexOptions opt_;
  size_t pos_ = 0;
  std::vector<size_t> line_starts_;
  std::vector<Token> out_;

  void where(size_t off, int& line, int& col) const {
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), off);
    const size_t idx = static_cast<size_t>(it - line_starts_.begin()) - 1;
    line = static_cast<int>(idx) + 1;
    col = static_cast<int>(off - line_starts_[idx]) + 1;
  }
  std::string where_str(size_t off) const {
    int line, col;
    where(off, line, col);
    return "line " + std::to_string(line) + " col " + std::to_string(col);
  }
  [[noreturn]] void error(size_t off, const std::string& msg) const {
    int line, col;
    where(off, line, col);
    fail_at(line, col, msg);
  }
  bool at(size_t p, const char* s) const { return src_.compare(p, std::char_traits<char>::length(s), s) == 0; }

  Token& push(Token::Kind kind, size_t off, std::string text = {}) {
    Token t;
    t.kind = kind;
    t.text = std::move(text);
    where(off, t.line, t.col);
    out_.push_back(std::move(t));
    return out_.back();
  }
  void push_text(std::string text) {
    if (!text.empty()) push(Token::Kind::kText, pos_, std::move(text));
  }

  size_t find_tag(size_t from) const {
    for (size_t p = src_.find('{', from); p != std::string::npos; p = src_.find('{', p + 1))
      if (p + 1 < src_.size() && (src_[p + 1] == '{' || src_[p + 1] == '%' || src_[p + 1] == '#'))
        return p;
    return std::string::npos;
  }

  // Whitespace before a tag: "-" strips all of it; lstrip_blocks strips a block tag's or a
  // comment's indentation when only spaces precede it on its line ("+" opts out).
  void strip_before(std::string& text, char mod, bool block_like, bool line_start) const {
    if (mod == '-') {
      while (!text.empty() && is_space(text.back())) text.pop_back();
      return;
    }
    if (!block_like || !opt_.lstrip_blocks || mod == '+') return;
    const size_t nl = text.rfind('\n');
    const size_t from = nl == std::string::npos ? 0 : nl + 1;
    if (nl == std::string::npos && !line_start) return;
    for (size_t k = from; k < text.size(); ++k)
      if (!is_space(text[k])) return;
    text.erase(from);
  }

  // After a closing tag: "-" strips all whitespace, "+" keeps it, else trim_blocks drops one
  // newline after a block tag or comment.
  void strip_after(char mod, bool block_like) {
    if (mod == '-') {
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
    } else if (mod != '+' && block_like && opt_.trim_blocks && pos_ < src_.size() &&
               src_[pos_] == '\n') {
      ++pos_;
    }
  }

  void lex_comment(size_t start) {
    const size_t end = src_.find("#}", pos_);
    if (end == std::string::npos) error(start, "unterminated comment: '{#' without '#}'");
    const char mod = end > pos_ && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : 0;
    pos_ = end + 2;
    strip_after(mod, true);
  }

  // {% raw %}...{% endraw %}: the inside is text, tags and all. False when the tag is not raw.
  bool lex_raw(size_t start) {
    size_t p = pos_;
    while (p < src_.size() && is_space(src_[p])) ++p;
    if (!at(p, "raw") || (p + 3 < src_.size() && is_name_char(src_[p + 3]))) return false;
    p += 3;
    while (p < src_.size() && is_space(src_[p])) ++p;
    const bool strip = at(p, "-%}");
    if (!strip && !at(p, "%}")) return false;
    pos_ = p + (strip ? 3 : 2);
    strip_after(strip ? '-' : '+', true);
    const size_t body = pos_;
    for (size_t q = find_tag(body); q != std::string::npos; q = find_tag(q + 1)) {
      if (src_[q + 1] != '%') continue;
      size_t r = q + 2;
      const char mod = r < src_.size() && (src_[r] == '-' || src_[r] == '+') ? src_[r] : 0;
      if (mod) ++r;
      while (r < src_.size() && is_space(src_[r])) ++r;
      if (!at(r, "endraw") || (r + 6 < src_.size() && is_name_char(src_[r + 6]))) continue;
      r += 6;
      while (r < src_.size() && is_space(src_[r])) ++r;
      const char close = at(r, "-%}") ? '-' : at(r, "+%}") ? '+' : 0;
      if (!close && !at(r, "%}")) continue;
      std::string text = src_.substr(body, q - body);
      strip_before(text, mod, true, body == 0 || src_[body - 1] == '\n');
      pos_ = body;
      push_text(std::move(text));
      pos_ = r + (close ? 3 : 2);
      strip_after(close, true);
      return true;
    }
    error(start, "unterminated raw block: '{% raw %}' without '{% endraw %}'");
  }

  void lex_tag(size_t start, char kind) {
    const bool var = kind == '{';
    const char* open = var ? "'{{'" : "'{%'";
    push(var ? Token::Kind::kVarBegin : Token::Kind::kBlockBegin, start);
    std::vector<size_t> brackets;  // offsets of the open ( [ {
    for (;;) {
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
      if (pos_ >= src_.size()) {
        if (!brackets.empty())
          error(brackets.back(), std::string("'") + src_[brackets.back()] + "' is never closed");
        error(start, std::string(open) + " is not closed by " + (var ? "'}}'" : "'%}'"));
      }
      if (brackets.empty()) {
        char close = 0;
        size_t len = 0;
        if (var && at(pos_, "-}}")) close = '-', len = 3;
        else if (var && at(pos_, "}}")) close = ' ', len = 2;
        else if (!var && (at(pos_, "-%}") || at(pos_, "+%}"))) close = src_[pos_], len = 3;
        else if (!var && at(pos_, "%}")) close = ' ', len = 2;
        if (close) {
          push(var ? Token::Kind::kVarEnd : Token::Kind::kBlockEnd, pos_);
          pos_ += len;
          strip_after(close, !var);
          return;
        }
        if (var ? at(pos_, "%}") : at(pos_, "}}"))
          error(pos_, std::string(open) + " at " + where_str(start) + " is closed by '" +
                          src_.substr(pos_, 2) + "'");
        if (find_tag(pos_) == pos_)
          error(pos_, std::string(open) + " at " + where_str(start) + " is not closed before '" +
                          src_.substr(pos_, 2) + "'");
      }
      const char c = src_[pos_];
      if (is_name_start(c)) {
        const size_t b = pos_;
        while (pos_ < src_.size() && is_name_char(src_[pos_])) ++pos_;
        push(Token::Kind::kName, b, src_.substr(b, pos_ - b));
      } else if (is_digit(c)) {
        lex_number();
      } else if (c == '\'' || c == '"') {
        lex_string();
      } else {
        lex_op(brackets);
      }
    }
  }

  void lex_number() {
    const size_t b = pos_;
    bool is_float = false;
    while (pos_ < src_.size() && is_digit(src_[pos_])) ++pos_;
    if (pos_ + 1 < src_.size() && src_[pos_] == '.' && is_digit(src_[pos_ + 1])) {
      is_float = true;
      ++pos_;
      while (pos_ < src_.size() && is_digit(src_[pos_])) ++pos_;
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      size_t q = pos_ + 1;
      if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
      if (q < src_.size() && is_digit(src_[q])) {
        is_float = true;
        pos_ = q;
        while (pos_ < src_.size() && is_digit(src_[pos_])) ++pos_;
      }
    }
    const std::string text = src_.substr(b, pos_ - b);
    Token& t = push(is_float ? Token::Kind::kFloat : Token::Kind::kInt, b, text);
    const char* first = text.data();
    const char* last = text.data() + text.size();
    const auto res = is_float ? std::from_chars(first, last, t.fval) : std::from_chars(first, last, t.ival);
    if (res.ec != std::errc() || res.ptr != last) error(b, "number out of range: " + text);
  }

  void lex_string() {
    const size_t b = pos_;
    const char quote = src_[pos_++];
    std::string val;
    const auto unterminated = [&] { error(b, "unterminated string: no closing " + describe_char(quote)); };
    for (;;) {
      if (pos_ >= src_.size()) unterminated();
      const char ch = src_[pos_];
      if (ch == quote) {
        ++pos_;
        break;
      }
      if (ch != '\\') {
        val += ch;
        ++pos_;
        continue;
      }
      if (pos_ + 1 >= src_.size()) unterminated();
      const char e = src_[pos_ + 1];
      pos_ += 2;
      switch (e) {
        case 'n': val += '\n'; break;
        case 't': val += '\t'; break;
        case 'r': val += '\r'; break;
        case 'b': val += '\b'; break;
        case 'f': val += '\f'; break;
        case 'v': val += '\v'; break;
        case 'a': val += '\a'; break;
        case '\\': val += '\\'; break;
        case '\'': val += '\''; break;
        case '"': val += '"'; break;
        case '\n': break;  // a backslash at the end of a line continues it
        case 'x':
        case 'u':
        case 'U': {
          const int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t cp = 0;
          for (int k = 0; k < digits; ++k) {
            const int h = pos_ < src_.size() ? hex_value(src_[pos_]) : -1;
            if (h < 0) error(pos_ - 2 - k, std::string("invalid \\") + e + " escape in string");
            cp = cp * 16 + static_cast<uint32_t>(h);
            ++pos_;
          }
          append_utf8(val, cp);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {  // octal, up to three digits
            uint32_t cp = static_cast<uint32_t>(e - '0');
            for (int k = 0; k < 2 && pos_ < src_.size() && src_[pos_] >= '0' && src_[pos_] <= '7'; ++k)
              cp = cp * 8 + static_cast<uint32_t>(src_[pos_++] - '0');
            append_utf8(val, cp);
          } else {  // Python keeps an unknown escape as written
            val += '\\';
            val += e;
          }
      }
    }
    push(Token::Kind::kString, b, std::move(val));
  }

  void lex_op(std::vector<size_t>& brackets) {
    static const char* kTwo[] = {"==", "!=", "<=", ">=", "//", "**"};
    for (const char* op : kTwo) {
      if (at(pos_, op)) {
        push(Token::Kind::kOp, pos_, op);
        pos_ += 2;
        return;
      }
    }
    const char c = src_[pos_];
    if (std::string("+-*/%~<>=()[]{}.,:|").find(c) == std::string::npos)
      error(pos_, "unexpected character " + describe_char(c));
    if (c == '(' || c == '[' || c == '{') {
      brackets.push_back(pos_);
    } else if (c == ')' || c == ']' || c == '}') {
      const char want = c == ')' ? '(' : c == ']' ? '[' : '{';
      if (brackets.empty()) error(pos_, "unexpected " + describe_char(c));
      if (src_[brackets.back()] != want)
        error(pos_, "unexpected " + describe_char(c) + ": the '" + src_[brackets.back()] +
                        "' at " + where_str(brackets.back()) + " is not closed");
      brackets.pop_back();
    }
    push(Token::Kind::kOp, pos_, std::string(1, c));
    ++pos_;
  }
};

}  // namespace

std::vector<Token> lex(const std::string& source, const LexOptions& options) {
  return Lexer(source, options).run();
}

}  // namespace pf::jinja
