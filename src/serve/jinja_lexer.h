// Splits a Jinja template into text and the tokens inside its tags, applying whitespace
// control as Jinja's lexer does: {%- -%} {{- -}} {#- -#}, plus the environment options
// trim_blocks and lstrip_blocks that HF's apply_chat_template turns on.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pf::jinja {

struct Token {
  enum class Kind { kText, kVarBegin, kVarEnd, kBlockBegin, kBlockEnd, kName, kString, kInt,
                    kFloat, kOp, kEof };
  Kind kind = Kind::kEof;
  std::string text;  // kText and kString: the text itself (escapes decoded); kName, kOp: as written
  int64_t ival = 0;
  double fval = 0;
  int line = 1, col = 1;
};

struct LexOptions {
  bool trim_blocks = true;    // drop the first newline after a block tag or comment
  bool lstrip_blocks = true;  // drop spaces and tabs before a block tag or comment on its line
};

// The last token is kEof. Throws pf::Error (with line and column) on an unterminated tag,
// comment or string, unbalanced brackets, or a character that starts no token.
std::vector<Token> lex(const std::string& source, const LexOptions& options = {});

// Every template error reads "chat template line L col C: ...".
[[noreturn]] void fail_at(int line, int col, const std::string& msg);

}  // namespace pf::jinja
