// The parsed form of a Jinja template (the subset HF chat templates use), and the entry points
// that build and render it. ChatTemplate (serve/chat_template.h) is the public face.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "serve/jinja_value.h"

namespace pf::jinja {

// Parser limits: a nested construct or expression deeper than this is an error, which bounds
// the recursion of the parser, the renderer and the tree's destructor alike.
constexpr int kMaxNesting = 64;
constexpr int kMaxExprDepth = 256;

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,  // value
    kName,     // name
    kList,     // args: items
    kDict,     // args: key0, value0, key1, value1, ...
    kAttr,     // args[0].name
    kIndex,    // args[0][args[1]]
    kSlice,    // args[0][args[1]:args[2]:args[3]], any of the three may be null
    kCall,     // args[0](args[1..], kwargs)
    kFilter,   // args[0] | name(args[1..], kwargs)
    kTest,     // args[0] is [not] name(args[1..]); negated
    kUnary,    // name is "-", "+" or "not"; args[0]
    kBinary,   // name is the operator ("+", "~", "and", "in", "notin", ...); args[0], args[1]
    kCompare,  // args[0] ops[0] args[1] ops[1] args[2] ...: chained like Python's a < b < c
    kCond,     // args[1] if args[0] else args[2] (null: undefined)
  };
  Kind kind = Kind::kLiteral;
  int line = 0, col = 0;
  int depth = 1;  // height of the subtree
  Value value;
  std::string name;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;
  bool negated = false;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  enum class Kind {
    kText,      // text
    kOutput,    // {{ expr }}
    kIf,        // branches: (condition, body); a null condition is the else branch
    kFor,       // for targets in expr [if filter]: body [else: else_body]
    kSet,       // set targets = expr, or set targets[0].attr = expr
    kSetBlock,  // set targets[0] %}body{% endset
    kMacro,     // macro targets[0](params = defaults): body
    kBreak,
    kContinue,
    kScope,     // {% generation %}: HF's marker for assistant text, renders its body as is
  };
  Kind kind = Kind::kText;
  int line = 0, col = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr filter;
  std::vector<std::pair<ExprPtr, Body>> branches;
  std::vector<std::string> targets;
  std::string attr;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // one per param, null where it has none
  Body body, else_body;
};

struct Template {
  Body body;
};

// Throws pf::Error naming the problem and its line and column.
std::unique_ptr<Template> parse_template(const std::string& source);
// globals: the variables the template sees. Errors name the line and column they came from,
// except raise_exception(msg), whose error is msg itself.
std::string render_template(const Template& tmpl, const Dict& globals);

}  // namespace pf::jinja
