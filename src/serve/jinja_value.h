// Values of the Jinja subset used by chat templates, with the Python behaviour templates rely
// on: str() and repr() text, truthiness, equality, and json.dumps as HF's tojson calls it.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace pf::jinja {

struct Stmt;
struct Value;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<std::string, Value>>;  // insertion order, as Python keeps it

// Containers nest at most this deep (a loop like `set ns.x = [ns.x]` would otherwise build a
// value whose printing or destruction overflows the stack).
constexpr int kMaxValueDepth = 100;

struct Value {
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace, kMacro };
  Kind kind = Kind::kUndefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;  // kString; for kUndefined, what was missing (for error messages)
  // kList and kDict are never changed after construction (HF renders in an immutable
  // sandbox); kNamespace is shared on purpose, so `set ns.x` is seen through every copy.
  std::shared_ptr<const List> list;
  std::shared_ptr<Dict> dict;
  const Stmt* macro = nullptr;  // kMacro: the {% macro %} statement, owned by the template
  int depth = 0;                // container nesting: 0 for scalars

  static Value undefined(std::string what);
  static Value none();
  static Value boolean(bool v);
  static Value integer(int64_t v);
  static Value number(double v);
  static Value string(std::string v);
  // Containers may not hold namespaces: a namespace that holds itself would be a cycle.
  static Value make_list(List items);
  static Value make_dict(Dict items);
  static Value make_namespace(Dict items);

  bool is_undefined() const { return kind == Kind::kUndefined; }
  bool is_string() const { return kind == Kind::kString; }
  bool is_int() const { return kind == Kind::kInt || kind == Kind::kBool; }  // Python: bool is int
  bool is_number() const { return is_int() || kind == Kind::kFloat; }
  bool is_mapping() const { return kind == Kind::kDict || kind == Kind::kNamespace; }
  int64_t as_int() const { return kind == Kind::kBool ? (b ? 1 : 0) : i; }
  double as_double() const { return kind == Kind::kFloat ? f : static_cast<double>(as_int()); }
};

// Python type names, for messages ("cannot add string and integer").
const char* type_name(const Value& v);
bool truthy(const Value& v);
bool equal(const Value& a, const Value& b);
// Python str(): what {{ v }} prints. Undefined prints as "".
std::string to_str(const Value& v);
std::string repr(const Value& v);
// json.dumps(v, ensure_ascii=ascii, indent=indent (< 0: None), sort_keys=sort_keys).
std::string to_json(const Value& v, int indent, bool sort_keys, bool ascii);
std::string float_repr(double d);
const Value* dict_find(const Dict& d, const std::string& key);

// UTF-8 (Python indexes strings by character): where each character starts. Invalid bytes
// count as one character each, so every string has an answer.
std::vector<size_t> char_starts(const std::string& s);
size_t char_count(const std::string& s);
// Appends code point cp as UTF-8 (out-of-range code points become U+FFFD).
void append_utf8(std::string& out, uint32_t cp);

}  // namespace pf::jinja
