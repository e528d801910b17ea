// Walks the parsed template. Scoping follows Jinja: a for-loop body gets a fresh scope each
// iteration (so `set` inside a loop does not leak out: templates use namespace() for that),
// while if-blocks share the enclosing one. Work, output size and recursion are bounded so a
// hostile template fails with an error instead of hanging or overflowing the stack.
#include <algorithm>
#include <unordered_map>

#include "serve/jinja_ast.h"
#include "serve/jinja_builtins.h"
#include "serve/jinja_lexer.h"

namespace pf::jinja {

namespace {

// Work: an evaluation is 1 step, a loop turn 10 (it builds a scope and the loop object), and
// copying text 1 per 64 bytes. A chat needs ~50 steps a message; 5M is about a second.
constexpr int64_t kMaxSteps = 5'000'000;
constexpr int64_t kLoopTurnSteps = 10;
constexpr int kMaxRenderDepth = 400;       // nested evaluations and bodies, macros included
constexpr int kMaxCallDepth = 32;          // nested macro calls

struct Scope {
  Scope* parent = nullptr;
  std::unordered_map<std::string, Value> vars;

  Value* find(const std::string& name) {
    for (Scope* s = this; s; s = s->parent) {
      const auto it = s->vars.find(name);
      if (it != s->vars.end()) return &it->second;
    }
    return nullptr;
  }
};

enum class Flow { kNormal, kBreak, kContinue };

class Renderer {
 public:
  explicit Renderer(const Dict& globals) {
    for (const auto& kv : globals) root_.vars[kv.first] = kv.second;
  }

  std::string run(const Body& body) {
    std::string out;
    exec(body, root_, out);
    return out;
  }

 private:
  Scope root_;
  int64_t steps_ = 0;
  int depth_ = 0;
  int calls_ = 0;

  struct Deeper {
    int& d;
    Deeper(int& depth, int limit, int line, int col, const char* what) : d(depth) {
      if (++d > limit) {
        --d;
        fail_at(line, col, std::string(what) + " nested deeper than " + std::to_string(limit) + " levels");
      }
    }
    ~Deeper() { --d; }
  };

  void tick(int line, int col, int64_t n) {
    steps_ += n;
    if (steps_ > kMaxSteps)
      fail_at(line, col, "rendering takes too long (over " + std::to_string(kMaxSteps) + " steps)");
  }

  // Runs a builtin, adding the expression's position to its error (raise_exception's own
  // message passes through unchanged).
  template <typename F>
  auto at(const Expr& e, F&& f) -> decltype(f()) {
    try {
      return f();
    } catch (const RaisedError&) {
      throw;
    } catch (const Error& err) {
      fail_at(e.line, e.col, err.what());
    }
  }

  void emit(std::string& out, const std::string& s, const Stmt& st) {
    tick(st.line, st.col, 1 + static_cast<int64_t>(s.size() / 64));
    if (out.size() + s.size() > kMaxStringBytes)
      fail_at(st.line, st.col, "output larger than " + std::to_string(kMaxStringBytes) + " bytes");
    out += s;
  }

  // ---- statements ----

  Flow exec(const Body& body, Scope& scope, std::string& out) {
    for (const StmtPtr& sp : body) {
      const Stmt& st = *sp;
      Deeper guard(depth_, kMaxRenderDepth, st.line, st.col, "template");
      switch (st.kind) {
        case Stmt::Kind::kText: emit(out, st.text, st); break;
        case Stmt::Kind::kOutput: emit(out, to_str(eval(*st.expr, scope)), st); break;
        case Stmt::Kind::kIf:
          for (const auto& [cond, branch] : st.branches) {
            if (cond && !truthy(eval(*cond, scope))) continue;
            const Flow f = exec(branch, scope, out);
            if (f != Flow::kNormal) return f;
            break;
          }
          break;
        case Stmt::Kind::kFor: exec_for(st, scope, out); break;
        case Stmt::Kind::kSet: assign(st, scope, eval(*st.expr, scope)); break;
        case Stmt::Kind::kSetBlock: {
          Scope inner{&scope, {}};
          std::string text;
          exec(st.body, inner, text);
          scope.vars[st.targets[0]] = Value::string(std::move(text));
          break;
        }
        case Stmt::Kind::kMacro: {
          Value m;
          m.kind = Value::Kind::kMacro;
          m.macro = &st;
          scope.vars[st.targets[0]] = m;
          break;
        }
        case Stmt::Kind::kBreak: return Flow::kBreak;
        case Stmt::Kind::kContinue: return Flow::kContinue;
        case Stmt::Kind::kScope: {
          const Flow f = exec(st.body, scope, out);
          if (f != Flow::kNormal) return f;
          break;
        }
      }
    }
    return Flow::kNormal;
  }

  void bind(const Stmt& st, Scope& scope, const std::vector<std::string>& names, const Value& v) {
    if (names.size() == 1) {
      scope.vars[names[0]] = v;
      return;
    }
    List parts;
    try {
      parts = iterate(v);
    } catch (const Error& err) {
      fail_at(st.line, st.col, err.what());
    }
    if (parts.size() != names.size())
      fail_at(st.line, st.col, "cannot unpack " + std::to_string(parts.size()) + " values into " +
                                   std::to_string(names.size()) + " names");
    for (size_t k = 0; k < names.size(); ++k) scope.vars[names[k]] = parts[k];
  }

  void assign(const Stmt& st, Scope& scope, const Value& v) {
    if (st.attr.empty()) {
      bind(st, scope, st.targets, v);
      return;
    }
    Value* ns = scope.find(st.targets[0]);
    if (!ns || ns->kind != Value::Kind::kNamespace)
      fail_at(st.line, st.col, "cannot set '" + st.targets[0] + "." + st.attr + "': '" + st.targets[0] +
                                   "' is not a namespace");
    if (v.kind == Value::Kind::kNamespace)
      fail_at(st.line, st.col, "a namespace cannot be stored in a namespace");
    for (auto& kv : *ns->dict) {
      if (kv.first == st.attr) {
        kv.second = v;
        return;
      }
    }
    ns->dict->emplace_back(st.attr, v);
  }

  void exec_for(const Stmt& st, Scope& scope, std::string& out) {
    const Value seq = eval(*st.expr, scope);
    List items = at(*st.expr, [&] { return iterate(seq); });
    if (st.filter) {  // `for x in xs if cond`: loop.length counts what passes
      List kept;
      for (const Value& item : items) {
        tick(st.line, st.col, kLoopTurnSteps);
        Scope s{&scope, {}};
        bind(st, s, st.targets, item);
        if (truthy(eval(*st.filter, s))) kept.push_back(item);
      }
      items = std::move(kept);
    }
    if (items.empty()) {
      Scope s{&scope, {}};
      exec(st.else_body, s, out);
      return;
    }
    const int64_t n = static_cast<int64_t>(items.size());
    for (int64_t k = 0; k < n; ++k) {
      tick(st.line, st.col, kLoopTurnSteps);
      Scope s{&scope, {}};
      bind(st, s, st.targets, items[k]);
      Dict loop = {
          {"index", Value::integer(k + 1)},      {"index0", Value::integer(k)},
          {"revindex", Value::integer(n - k)},   {"revindex0", Value::integer(n - k - 1)},
          {"first", Value::boolean(k == 0)},     {"last", Value::boolean(k == n - 1)},
          {"length", Value::integer(n)},         {"depth", Value::integer(1)},
          {"depth0", Value::integer(0)},
      };
      int d = 0;
      if (k > 0) loop.emplace_back("previtem", items[k - 1]), d = items[k - 1].depth;
      if (k + 1 < n) loop.emplace_back("nextitem", items[k + 1]), d = std::max(d, items[k + 1].depth);
      Value lv;  // built by hand: the items were already checked when their list was made
      lv.kind = Value::Kind::kDict;
      lv.depth = d + 1;
      lv.dict = std::make_shared<Dict>(std::move(loop));
      s.vars["loop"] = std::move(lv);
      if (exec(st.body, s, out) == Flow::kBreak) break;
    }
  }

  // ---- expressions ----

  Value eval(const Expr& e, Scope& scope) {
    Deeper guard(depth_, kMaxRenderDepth, e.line, e.col, "expression");
    Value v = eval_node(e, scope);
    tick(e.line, e.col, 1 + static_cast<int64_t>(v.s.size() / 64));
    return v;
  }

  Value eval_node(const Expr& e, Scope& scope) {
    switch (e.kind) {
      case Expr::Kind::kLiteral: return e.value;
      case Expr::Kind::kName: {
        if (const Value* v = scope.find(e.name)) return *v;
        return Value::undefined("'" + e.name + "' is undefined");
      }
      case Expr::Kind::kList: {
        List items;
        for (const ExprPtr& a : e.args) items.push_back(eval(*a, scope));
        return at(e, [&] { return Value::make_list(std::move(items)); });
      }
      case Expr::Kind::kDict: return eval_dict(e, scope);
      case Expr::Kind::kAttr: {
        const Value obj = eval(*e.args[0], scope);
        return at(e, [&] { return get_attr(obj, e.name); });
      }
      case Expr::Kind::kIndex: {
        const Value obj = eval(*e.args[0], scope);
        const Value key = eval(*e.args[1], scope);
        return at(e, [&] { return get_item(obj, key); });
      }
      case Expr::Kind::kSlice: return eval_slice(e, scope);
      case Expr::Kind::kCall: return eval_call(e, scope);
      case Expr::Kind::kFilter: {
        const Value subject = eval(*e.args[0], scope);
        const Args args = eval_args(e, scope);
        return at(e, [&] { return apply_filter(e.name, subject, args); });
      }
      case Expr::Kind::kTest: {
        const Value subject = eval(*e.args[0], scope);
        const Args args = eval_args(e, scope);
        const bool r = at(e, [&] { return apply_test(e.name, subject, args); });
        return Value::boolean(r != e.negated);
      }
      case Expr::Kind::kUnary: {
        const Value v = eval(*e.args[0], scope);
        if (e.name == "not") return Value::boolean(!truthy(v));
        if (e.name == "-") return at(e, [&] { return unary_minus(v); });
        if (!v.is_number()) fail_at(e.line, e.col, std::string("bad operand type for unary +: ") + type_name(v));
        return v;
      }
      case Expr::Kind::kBinary: {
        Value l = eval(*e.args[0], scope);
        if (e.name == "and") return truthy(l) ? eval(*e.args[1], scope) : l;
        if (e.name == "or") return truthy(l) ? l : eval(*e.args[1], scope);
        const Value r = eval(*e.args[1], scope);
        return at(e, [&] { return binary_op(e.name, l, r); });
      }
      case Expr::Kind::kCompare: {
        Value l = eval(*e.args[0], scope);
        for (size_t k = 0; k < e.ops.size(); ++k) {
          Value r = eval(*e.args[k + 1], scope);
          if (!truthy(at(e, [&] { return binary_op(e.ops[k], l, r); }))) return Value::boolean(false);
          l = std::move(r);
        }
        return Value::boolean(true);
      }
      case Expr::Kind::kCond:
        if (truthy(eval(*e.args[0], scope))) return eval(*e.args[1], scope);
        return e.args[2] ? eval(*e.args[2], scope) : Value::undefined("the condition was false");
    }
    fail_at(e.line, e.col, "unknown expression");
  }

  Value eval_dict(const Expr& e, Scope& scope) {
    Dict items;
    for (size_t k = 0; k + 1 < e.args.size(); k += 2) {
      Value key = eval(*e.args[k], scope);
      if (!key.is_string())
        fail_at(e.args[k]->line, e.args[k]->col, std::string("dict keys must be strings, not ") + type_name(key));
      Value v = eval(*e.args[k + 1], scope);
      bool replaced = false;
      for (auto& kv : items)
        if (kv.first == key.s) kv.second = v, replaced = true;
      if (!replaced) items.emplace_back(std::move(key.s), std::move(v));
    }
    return at(e, [&] { return Value::make_dict(std::move(items)); });
  }

  Value eval_slice(const Expr& e, Scope& scope) {
    const Value obj = eval(*e.args[0], scope);
    Value bounds[3];
    for (int k = 0; k < 3; ++k)
      if (e.args[k + 1]) bounds[k] = eval(*e.args[k + 1], scope);
    const auto ptr = [&](int k) { return e.args[k + 1] ? &bounds[k] : nullptr; };
    return at(e, [&] { return get_slice(obj, ptr(0), ptr(1), ptr(2)); });
  }

  Args eval_args(const Expr& e, Scope& scope) {
    Args a;
    for (size_t k = 1; k < e.args.size(); ++k) a.pos.push_back(eval(*e.args[k], scope));
    for (const auto& [name, ex] : e.kwargs) a.kw.emplace_back(name, eval(*ex, scope));
    return a;
  }

  Value eval_call(const Expr& e, Scope& scope) {
    const Expr& callee = *e.args[0];
    Args args = eval_args(e, scope);
    Value out;
    if (callee.kind == Expr::Kind::kAttr) {  // obj.method(...)
      const Value obj = eval(*callee.args[0], scope);
      if (obj.is_mapping())
        if (const Value* m = dict_find(*obj.dict, callee.name); m && m->kind == Value::Kind::kMacro)
          return call_macro(e, *m->macro, args);
      if (at(e, [&] { return call_method(obj, callee.name, args, out); })) return out;
      if (obj.is_undefined())
        fail_at(e.line, e.col, "cannot call method '" + callee.name + "' of an undefined value (" + obj.s + ")");
      fail_at(e.line, e.col, std::string(type_name(obj)) + " has no method '" + callee.name + "'");
    }
    if (callee.kind == Expr::Kind::kName && !scope.find(callee.name)) {
      if (at(e, [&] { return call_global(callee.name, args, out); })) return out;
      fail_at(e.line, e.col, "'" + callee.name + "' is undefined, so it cannot be called");
    }
    const Value f = eval(callee, scope);
    if (f.kind != Value::Kind::kMacro) fail_at(e.line, e.col, std::string("cannot call a ") + type_name(f));
    return call_macro(e, *f.macro, args);
  }

  // A macro sees the template's top-level variables and its parameters; it returns its text.
  Value call_macro(const Expr& e, const Stmt& m, const Args& args) {
    Deeper guard(calls_, kMaxCallDepth, e.line, e.col, "macro calls");
    const std::string& name = m.targets[0];
    if (args.pos.size() > m.params.size())
      fail_at(e.line, e.col, "macro '" + name + "' takes " + std::to_string(m.params.size()) +
                                 " arguments, got " + std::to_string(args.pos.size()));
    Scope s{&root_, {}};
    std::vector<bool> given(m.params.size(), false);
    for (size_t k = 0; k < args.pos.size(); ++k) s.vars[m.params[k]] = args.pos[k], given[k] = true;
    for (const auto& [key, v] : args.kw) {
      size_t k = 0;
      while (k < m.params.size() && m.params[k] != key) ++k;
      if (k == m.params.size()) fail_at(e.line, e.col, "macro '" + name + "' has no parameter '" + key + "'");
      s.vars[key] = v;
      given[k] = true;
    }
    for (size_t k = 0; k < m.params.size(); ++k) {
      if (given[k]) continue;
      s.vars[m.params[k]] = m.defaults[k] ? eval(*m.defaults[k], s)
                                          : Value::undefined("'" + m.params[k] + "' was not passed");
    }
    std::string text;
    exec(m.body, s, text);
    return Value::string(std::move(text));
  }
};

}  // namespace

std::string render_template(const Template& tmpl, const Dict& globals) {
  return Renderer(globals).run(tmpl.body);
}

}  // namespace pf::jinja
