// Recursive descent over the lexer's tokens, with Jinja's operator precedence: conditional,
// or, and, not, comparisons and in, + -, ~, * / // %, **, unary - +, then postfix (. [] ())
// and filters/tests, which bind tighter than any binary operator (`a ~ b|upper`).
#include <algorithm>

#include "serve/jinja_ast.h"
#include "serve/jinja_builtins.h"
#include "serve/jinja_lexer.h"

namespace pf::jinja {

namespace {

using TK = Token::Kind;

std::string describe(const Token& t) {
  switch (t.kind) {
    case TK::kText: return "text";
    case TK::kVarBegin: return "'{{'";
    case TK::kVarEnd: return "'}}'";
    case TK::kBlockBegin: return "'{%'";
    case TK::kBlockEnd: return "'%}'";
    case TK::kName: return "'" + t.text + "'";
    case TK::kString: return "a string";
    case TK::kInt:
    case TK::kFloat: return "the number " + t.text;
    case TK::kOp: return "'" + t.text + "'";
    case TK::kEof: return "the end of the template";
  }
  return "a token";
}

struct OpenBlock {
  std::string name, closer;
  int line, col;
};

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  std::unique_ptr<Template> run() {
    auto tmpl = std::make_unique<Template>();
    std::string found;
    tmpl->body = parse_until({}, &found);
    return tmpl;
  }

 private:
  std::vector<Token> t_;
  size_t i_ = 0;
  int nest_ = 0;
  int loop_depth_ = 0;  // for-loops open around the current point (macros start afresh)
  std::vector<OpenBlock> open_;

  // Counts nesting (blocks, brackets, unary chains) so hostile input cannot exhaust the stack.
  struct Nest {
    Parser& p;
    Nest(Parser& parser, const Token& at) : p(parser) {
      if (++p.nest_ > kMaxNesting)
        fail_at(at.line, at.col, "nested deeper than " + std::to_string(kMaxNesting) + " levels");
    }
    ~Nest() { --p.nest_; }
  };

  const Token& peek(size_t ahead = 0) const { return t_[std::min(i_ + ahead, t_.size() - 1)]; }
  const Token& next() {
    const Token& t = peek();
    if (i_ < t_.size() - 1) ++i_;
    return t;
  }
  bool is_op(const char* op, size_t ahead = 0) const {
    return peek(ahead).kind == TK::kOp && peek(ahead).text == op;
  }
  bool is_name(const char* name) const { return peek().kind == TK::kName && peek().text == name; }
  [[noreturn]] void error(const Token& at, const std::string& msg) const {
    fail_at(at.line, at.col, msg);
  }
  void expect_op(const char* op) {
    if (!is_op(op)) error(peek(), std::string("expected '") + op + "', got " + describe(peek()));
    next();
  }
  std::string expect_name(const char* what) {
    if (peek().kind != TK::kName) error(peek(), std::string("expected ") + what + ", got " + describe(peek()));
    return next().text;
  }
  void expect_block_end() {
    if (peek().kind != TK::kBlockEnd) error(peek(), "expected '%}', got " + describe(peek()));
    next();
  }

  ExprPtr make(Expr::Kind kind, const Token& at) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = at.line;
    e->col = at.col;
    return e;
  }
  // Records the subtree's height once its children are in place; the bound keeps long
  // chains like a+a+a+... (built by loops, not recursion) from overflowing the stack later.
  ExprPtr seal(ExprPtr e) {
    int d = 0;
    for (const auto& a : e->args)
      if (a) d = std::max(d, a->depth);
    for (const auto& kv : e->kwargs) d = std::max(d, kv.second->depth);
    e->depth = d + 1;
    if (e->depth > kMaxExprDepth)
      fail_at(e->line, e->col, "expression nested deeper than " + std::to_string(kMaxExprDepth) + " levels");
    return e;
  }
  ExprPtr binary(const Token& at, std::string op, ExprPtr l, ExprPtr r) {
    auto e = make(Expr::Kind::kBinary, at);
    e->name = std::move(op);
    e->args.push_back(std::move(l));
    e->args.push_back(std::move(r));
    return seal(std::move(e));
  }

  // ---- statements ----

  // Parses until a {% tag %} named in ends; leaves the tokens after the tag name unread.
  Body parse_until(const std::vector<std::string>& ends, std::string* found) {
    Body body;
    for (;;) {
      const Token& tk = peek();
      if (tk.kind == TK::kText) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kText;
        s->text = next().text;
        body.push_back(std::move(s));
      } else if (tk.kind == TK::kVarBegin) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kOutput;
        s->line = tk.line;
        s->col = tk.col;
        next();
        s->expr = parse_tuple();
        if (peek().kind != TK::kVarEnd) error(peek(), "expected '}}', got " + describe(peek()));
        next();
        body.push_back(std::move(s));
      } else if (tk.kind == TK::kBlockBegin) {
        const Token& begin = next();
        const Token& name = peek();
        if (name.kind != TK::kName) error(name, "expected a tag name after '{%', got " + describe(name));
        if (std::find(ends.begin(), ends.end(), name.text) != ends.end()) {
          *found = next().text;
          return body;
        }
        next();
        body.push_back(parse_statement(begin, name));
      } else if (tk.kind == TK::kEof) {
        if (ends.empty()) return body;
        const OpenBlock& b = open_.back();
        fail_at(b.line, b.col, "unterminated '" + b.name + "' block: no '{% " + b.closer +
                                   " %}' before the end of the template");
      } else {
        error(tk, "unexpected " + describe(tk));
      }
    }
  }

  // The body of a block that began at `begin`, up to one of ends (the last one closes it).
  Body block_body(const Token& begin, const std::string& name, const std::vector<std::string>& ends,
                  std::string* found) {
    Nest nest(*this, begin);
    open_.push_back({name, ends.back(), begin.line, begin.col});
    Body body = parse_until(ends, found);
    open_.pop_back();
    return body;
  }

  StmtPtr parse_statement(const Token& begin, const Token& name_tok) {
    const std::string& name = name_tok.text;
    auto s = std::make_unique<Stmt>();
    s->line = begin.line;
    s->col = begin.col;
    std::string found;
    if (name == "if") {
      s->kind = Stmt::Kind::kIf;
      for (;;) {
        ExprPtr cond = parse_expression(false);
        expect_block_end();
        Body body = block_body(begin, "if", {"elif", "else", "endif"}, &found);
        s->branches.emplace_back(std::move(cond), std::move(body));
        if (found == "elif") continue;
        if (found == "else") {
          expect_block_end();
          s->branches.emplace_back(nullptr, block_body(begin, "if", {"endif"}, &found));
        }
        break;
      }
      expect_block_end();
    } else if (name == "for") {
      s->kind = Stmt::Kind::kFor;
      s->targets.push_back(expect_name("a loop variable"));
      while (is_op(",")) {
        next();
        s->targets.push_back(expect_name("a loop variable"));
      }
      if (!is_name("in")) error(peek(), "expected 'in' in the for tag, got " + describe(peek()));
      next();
      s->expr = parse_expression(false);
      if (is_name("if")) {
        next();
        s->filter = parse_expression();
      }
      if (is_name("recursive")) error(peek(), "recursive for loops are not supported");
      expect_block_end();
      ++loop_depth_;
      s->body = block_body(begin, "for", {"else", "endfor"}, &found);
      --loop_depth_;
      if (found == "else") {
        expect_block_end();
        s->else_body = block_body(begin, "for", {"endfor"}, &found);
      }
      expect_block_end();
    } else if (name == "set") {
      s->kind = Stmt::Kind::kSet;
      s->targets.push_back(expect_name("a variable name"));
      if (is_op(".")) {
        next();
        s->attr = expect_name("an attribute name");
      } else {
        while (is_op(",")) {
          next();
          s->targets.push_back(expect_name("a variable name"));
        }
      }
      if (is_op("=")) {
        next();
        s->expr = parse_tuple();
        expect_block_end();
      } else if (peek().kind == TK::kBlockEnd && s->targets.size() == 1 && s->attr.empty()) {
        s->kind = Stmt::Kind::kSetBlock;
        next();
        s->body = block_body(begin, "set", {"endset"}, &found);
        expect_block_end();
      } else {
        error(peek(), "expected '=' in the set tag, got " + describe(peek()));
      }
    } else if (name == "macro") {
      s->kind = Stmt::Kind::kMacro;
      s->targets.push_back(expect_name("a macro name"));
      expect_op("(");
      while (!is_op(")")) {
        s->params.push_back(expect_name("a parameter name"));
        ExprPtr def;
        if (is_op("=")) {
          next();
          def = parse_expression();
        } else if (!s->defaults.empty() && s->defaults.back()) {
          error(peek(), "a parameter without a default follows one with a default");
        }
        s->defaults.push_back(std::move(def));
        if (!is_op(",")) break;
        next();
      }
      expect_op(")");
      expect_block_end();
      const int saved = loop_depth_;
      loop_depth_ = 0;
      s->body = block_body(begin, "macro", {"endmacro"}, &found);
      loop_depth_ = saved;
      expect_block_end();
    } else if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) error(name_tok, "'" + name + "' outside a for loop");
      s->kind = name == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue;
      expect_block_end();
    } else if (name == "generation") {
      s->kind = Stmt::Kind::kScope;
      expect_block_end();
      s->body = block_body(begin, "generation", {"endgeneration"}, &found);
      expect_block_end();
    } else if (name == "elif" || name == "else" || name.rfind("end", 0) == 0) {
      std::string msg = "unexpected '{% " + name + " %}'";
      if (!open_.empty())
        msg += ": the '" + open_.back().name + "' block at line " + std::to_string(open_.back().line) +
               " col " + std::to_string(open_.back().col) + " is still open (expected '{% " +
               open_.back().closer + " %}')";
      else
        msg += " with no open block";
      error(name_tok, msg);
    } else if (name == "include" || name == "extends" || name == "import" || name == "from" ||
               name == "block" || name == "call" || name == "filter" || name == "with" ||
               name == "do" || name == "autoescape") {
      error(name_tok, "the '" + name + "' tag is not supported in chat templates");
    } else {
      error(name_tok, "unknown tag '" + name + "'");
    }
    return s;
  }

  // ---- expressions ----

  // `a, b` without brackets is a tuple (a list here), as in {% set x = 1, 2 %}.
  ExprPtr parse_tuple() {
    const Token& at = peek();
    ExprPtr first = parse_expression();
    if (!is_op(",")) return first;
    auto list = make(Expr::Kind::kList, at);
    list->args.push_back(std::move(first));
    while (is_op(",")) {
      next();
      if (peek().kind == TK::kVarEnd || peek().kind == TK::kBlockEnd) break;
      list->args.push_back(parse_expression());
    }
    return seal(std::move(list));
  }

  ExprPtr parse_expression(bool with_cond = true) {
    Nest nest(*this, peek());
    return with_cond ? parse_cond() : parse_or();
  }

  ExprPtr parse_cond() {
    ExprPtr e = parse_or();
    while (is_name("if")) {
      const Token& at = next();
      auto c = make(Expr::Kind::kCond, at);
      c->args.push_back(parse_or());
      c->args.push_back(std::move(e));
      if (is_name("else")) {
        next();
        c->args.push_back(parse_expression());
      } else {
        c->args.push_back(nullptr);
      }
      e = seal(std::move(c));
    }
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (is_name("or")) {
      const Token& at = next();
      e = binary(at, "or", std::move(e), parse_and());
    }
    return e;
  }

  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (is_name("and")) {
      const Token& at = next();
      e = binary(at, "and", std::move(e), parse_not());
    }
    return e;
  }

  ExprPtr parse_not() {
    if (!is_name("not")) return parse_compare();
    const Token& at = next();
    Nest nest(*this, at);
    auto e = make(Expr::Kind::kUnary, at);
    e->name = "not";
    e->args.push_back(parse_not());
    return seal(std::move(e));
  }

  ExprPtr parse_compare() {
    const Token& at = peek();
    ExprPtr first = parse_math1();
    ExprPtr cmp;
    for (;;) {
      std::string op;
      if (peek().kind == TK::kOp && (peek().text == "==" || peek().text == "!=" || peek().text == "<" ||
                                     peek().text == ">" || peek().text == "<=" || peek().text == ">=")) {
        op = next().text;
      } else if (is_name("in")) {
        next();
        op = "in";
      } else if (is_name("not") && peek(1).kind == TK::kName && peek(1).text == "in") {
        next();
        next();
        op = "notin";
      } else {
        break;
      }
      if (!cmp) {
        cmp = make(Expr::Kind::kCompare, at);
        cmp->args.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->args.push_back(parse_math1());
      cmp = seal(std::move(cmp));
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& at = next();
      e = binary(at, at.text, std::move(e), parse_concat());
    }
    return e;
  }

  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (is_op("~")) {
      const Token& at = next();
      e = binary(at, "~", std::move(e), parse_math2());
    }
    return e;
  }

  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& at = next();
      e = binary(at, at.text, std::move(e), parse_pow());
    }
    return e;
  }

  ExprPtr parse_pow() {
    ExprPtr e = parse_unary(true);
    while (is_op("**")) {
      const Token& at = next();
      e = binary(at, "**", std::move(e), parse_unary(true));
    }
    return e;
  }

  ExprPtr parse_unary(bool with_filter) {
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      const Token& at = next();
      Nest nest(*this, at);
      e = make(Expr::Kind::kUnary, at);
      e->name = at.text;
      e->args.push_back(parse_unary(false));
      e = seal(std::move(e));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    return with_filter ? parse_filters(std::move(e)) : std::move(e);
  }

  ExprPtr parse_primary() {
    const Token& tk = peek();
    switch (tk.kind) {
      case TK::kName: {
        next();
        auto e = make(Expr::Kind::kLiteral, tk);
        if (tk.text == "true" || tk.text == "True") {
          e->value = Value::boolean(true);
        } else if (tk.text == "false" || tk.text == "False") {
          e->value = Value::boolean(false);
        } else if (tk.text == "none" || tk.text == "None") {
          e->value = Value::none();
        } else {
          e->kind = Expr::Kind::kName;
          e->name = tk.text;
        }
        return seal(std::move(e));
      }
      case TK::kString: {
        auto e = make(Expr::Kind::kLiteral, tk);
        std::string s;
        while (peek().kind == TK::kString) s += next().text;  // 'a' 'b' is 'ab', as in Python
        e->value = Value::string(std::move(s));
        return seal(std::move(e));
      }
      case TK::kInt:
      case TK::kFloat: {
        next();
        auto e = make(Expr::Kind::kLiteral, tk);
        e->value = tk.kind == TK::kInt ? Value::integer(tk.ival) : Value::number(tk.fval);
        return seal(std::move(e));
      }
      case TK::kOp:
        if (tk.text == "(") {
          next();
          Nest nest(*this, tk);
          auto list = make(Expr::Kind::kList, tk);
          if (is_op(")")) {
            next();
            return seal(std::move(list));
          }
          ExprPtr e = parse_expression();
          if (!is_op(",")) {
            expect_op(")");
            return e;
          }
          list->args.push_back(std::move(e));
          while (is_op(",")) {
            next();
            if (is_op(")")) break;
            list->args.push_back(parse_expression());
          }
          expect_op(")");
          return seal(std::move(list));
        }
        if (tk.text == "[") {
          next();
          Nest nest(*this, tk);
          auto list = make(Expr::Kind::kList, tk);
          while (!is_op("]")) {
            list->args.push_back(parse_expression());
            if (!is_op(",")) break;
            next();
          }
          expect_op("]");
          return seal(std::move(list));
        }
        if (tk.text == "{") {
          next();
          Nest nest(*this, tk);
          auto dict = make(Expr::Kind::kDict, tk);
          while (!is_op("}")) {
            dict->args.push_back(parse_expression());
            expect_op(":");
            dict->args.push_back(parse_expression());
            if (!is_op(",")) break;
            next();
          }
          expect_op("}");
          return seal(std::move(dict));
        }
        break;
      default: break;
    }
    error(tk, "expected an expression, got " + describe(tk));
  }

  ExprPtr parse_postfix(ExprPtr e) {
    for (;;) {
      const Token& at = peek();
      if (is_op(".")) {
        next();
        if (peek().kind == TK::kInt) {  // a.0 is a[0]
          auto idx = make(Expr::Kind::kLiteral, peek());
          idx->value = Value::integer(next().ival);
          auto x = make(Expr::Kind::kIndex, at);
          x->args.push_back(std::move(e));
          x->args.push_back(seal(std::move(idx)));
          e = seal(std::move(x));
        } else {
          auto x = make(Expr::Kind::kAttr, at);
          x->name = expect_name("an attribute name after '.'");
          x->args.push_back(std::move(e));
          e = seal(std::move(x));
        }
      } else if (is_op("[")) {
        next();
        Nest nest(*this, at);
        ExprPtr parts[3];
        bool slice = false;
        if (!is_op(":")) parts[0] = parse_expression();
        if (is_op(":")) {
          slice = true;
          next();
          if (!is_op(":") && !is_op("]")) parts[1] = parse_expression();
          if (is_op(":")) {
            next();
            if (!is_op("]")) parts[2] = parse_expression();
          }
        }
        expect_op("]");
        auto x = make(slice ? Expr::Kind::kSlice : Expr::Kind::kIndex, at);
        x->args.push_back(std::move(e));
        for (int k = 0; k < (slice ? 3 : 1); ++k) x->args.push_back(std::move(parts[k]));
        e = seal(std::move(x));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_call(ExprPtr callee) {
    const Token& at = next();
    Nest nest(*this, at);
    auto e = make(Expr::Kind::kCall, at);
    e->args.push_back(std::move(callee));
    parse_args(*e);
    return seal(std::move(e));
  }

  // After '(': positional then keyword arguments, up to and including ')'.
  void parse_args(Expr& e) {
    while (!is_op(")")) {
      if (peek().kind == TK::kName && is_op("=", 1)) {
        std::string key = next().text;
        next();
        e.kwargs.emplace_back(std::move(key), parse_expression());
      } else {
        if (!e.kwargs.empty()) error(peek(), "a positional argument follows a keyword argument");
        e.args.push_back(parse_expression());
      }
      if (!is_op(",")) break;
      next();
    }
    expect_op(")");
  }

  ExprPtr parse_filters(ExprPtr e) {
    for (;;) {
      const Token& at = peek();
      if (is_op("|")) {
        next();
        const Token& name = peek();
        auto f = make(Expr::Kind::kFilter, at);
        f->name = expect_name("a filter name after '|'");
        if (!is_filter_name(f->name)) error(name, "unknown filter '" + f->name + "'");
        f->args.push_back(std::move(e));
        if (is_op("(")) {
          Nest nest(*this, peek());
          next();
          parse_args(*f);
        }
        e = seal(std::move(f));
      } else if (is_name("is")) {
        next();
        auto t = make(Expr::Kind::kTest, at);
        if (is_name("not")) {
          next();
          t->negated = true;
        }
        const Token& name = peek();
        t->name = expect_name("a test name after 'is'");
        if (!is_test_name(t->name)) error(name, "unknown test '" + t->name + "'");
        t->args.push_back(std::move(e));
        if (is_op("(")) {
          Nest nest(*this, peek());
          next();
          parse_args(*t);
        } else if (starts_argument()) {  // `x is divisibleby 3`
          t->args.push_back(parse_primary());
        }
        e = seal(std::move(t));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  // Whether a test's lone argument follows (`is sameas none`), as opposed to the next keyword.
  bool starts_argument() const {
    const Token& t = peek();
    if (t.kind == TK::kName) {
      static const char* kKeywords[] = {"else", "or", "and", "if", "in", "not", "is"};
      for (const char* k : kKeywords)
        if (t.text == k) return false;
      return true;
    }
    return t.kind == TK::kString || t.kind == TK::kInt || t.kind == TK::kFloat ||
           (t.kind == TK::kOp && (t.text == "[" || t.text == "{"));
  }
};

}  // namespace

std::unique_ptr<Template> parse_template(const std::string& source) {
  return Parser(lex(source)).run();
}

}  // namespace pf::jinja
