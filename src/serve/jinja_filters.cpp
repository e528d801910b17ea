// Filters, tests, str/dict methods and global functions. Case mapping is ASCII only (Python
// maps all of Unicode); everything else follows Jinja 3 and HF's additions (tojson with
// ensure_ascii=False, raise_exception, strftime_now).
#include <algorithm>
#include <cstring>
#include <ctime>
#include <initializer_list>

#include "serve/jinja_builtins.h"

namespace pf::jinja {

namespace {

const char* const kFilters[] = {
    "abs",   "capitalize", "count",   "d",     "default", "first",   "float",      "indent",
    "int",   "items",      "join",    "last",  "length",  "list",    "lower",      "map",
    "reject", "rejectattr", "replace", "reverse", "safe", "select", "selectattr", "string",
    "title", "tojson",     "trim",    "upper",
};
const char* const kTests[] = {
    "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "even",     "false",
    "float",   "ge",       "gt",      "in",          "integer", "iterable", "le",   "lower",
    "lt",      "mapping",  "ne",      "none",        "number", "odd",     "sameas", "sequence",
    "string",  "true",     "undefined", "upper",
};

bool ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
char to_upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c; }
char to_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || static_cast<unsigned char>(c) >= 0x80; }

std::string upper(std::string s) {
  for (char& c : s) c = to_upper(c);
  return s;
}
std::string lower(std::string s) {
  for (char& c : s) c = to_lower(c);
  return s;
}
std::string capitalize(std::string s) {
  for (size_t k = 0; k < s.size(); ++k) s[k] = k ? to_lower(s[k]) : to_upper(s[k]);
  return s;
}
// Jinja's title filter starts words after whitespace and -([{<; str.title() after any non-letter.
std::string title(std::string s, bool any_nonletter) {
  bool start = true;
  for (char& c : s) {
    c = start ? to_upper(c) : to_lower(c);
    start = any_nonletter ? !is_alpha(c) : (ascii_space(c) || std::strchr("-([{<", c) != nullptr);
  }
  return s;
}

// str.strip(chars): chars null means whitespace.
std::string strip(const std::string& s, const std::string* chars, bool left, bool right) {
  const auto drop = [&](char c) { return chars ? chars->find(c) != std::string::npos : ascii_space(c); };
  size_t b = 0, e = s.size();
  if (left)
    while (b < e && drop(s[b])) ++b;
  if (right)
    while (e > b && drop(s[e - 1])) --e;
  return s.substr(b, e - b);
}

std::string replace(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  std::string out;
  int64_t done = 0;
  if (from.empty()) {  // Python inserts `to` around every character
    const std::vector<size_t> starts = char_starts(s);
    for (size_t k = 0; k < starts.size(); ++k) {
      if (count < 0 || done < count) out += to, ++done;
      out.append(s, starts[k], (k + 1 < starts.size() ? starts[k + 1] : s.size()) - starts[k]);
      check_string_size(out.size());
    }
    if (count < 0 || done < count) out += to;
    return out;
  }
  size_t pos = 0;
  for (size_t hit; (count < 0 || done < count) && (hit = s.find(from, pos)) != std::string::npos; ++done) {
    out.append(s, pos, hit - pos);
    out += to;
    check_string_size(out.size());
    pos = hit + from.size();
  }
  out.append(s, pos, std::string::npos);
  check_string_size(out.size());
  return out;
}

List split(const std::string& s, const std::string* sep, int64_t maxsplit) {
  List out;
  if (sep) {
    PF_CHECK(!sep->empty(), "split: empty separator");
    size_t pos = 0;
    for (size_t hit; (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) &&
                     (hit = s.find(*sep, pos)) != std::string::npos;) {
      out.push_back(Value::string(s.substr(pos, hit - pos)));
      pos = hit + sep->size();
    }
    out.push_back(Value::string(s.substr(pos)));
    return out;
  }
  size_t pos = 0;
  while (pos < s.size()) {  // runs of whitespace, no empty pieces
    while (pos < s.size() && ascii_space(s[pos])) ++pos;
    if (pos == s.size()) break;
    size_t end = pos;
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit) {
      end = s.size();
      while (end > pos && ascii_space(s[end - 1])) --end;
    } else {
      while (end < s.size() && !ascii_space(s[end])) ++end;
    }
    out.push_back(Value::string(s.substr(pos, end - pos)));
    pos = end;
  }
  return out;
}

// The argument at position idx, or passed by name; null when absent.
const Value* arg(const Args& a, size_t idx, const char* name) {
  if (idx < a.pos.size()) return &a.pos[idx];
  for (const auto& kv : a.kw)
    if (kv.first == name) return &kv.second;
  return nullptr;
}

const Value* kwarg(const Args& a, const char* name) {
  for (const auto& kv : a.kw)
    if (kv.first == name) return &kv.second;
  return nullptr;
}

void check_args(const Args& a, const std::string& what, std::initializer_list<const char*> names) {
  PF_CHECK(a.pos.size() <= names.size(), what, " takes at most ", names.size(), " arguments, got ",
           a.pos.size());
  for (const auto& kv : a.kw) {
    const bool known = std::any_of(names.begin(), names.end(), [&](const char* n) { return kv.first == n; });
    PF_CHECK(known, what, " has no argument '", kv.first, "'");
  }
}

const std::string& str_arg(const Value* v, const std::string& what) {
  PF_CHECK(v && v->is_string(), what, " needs a string argument");
  return v->s;
}

int64_t int_arg(const Value* v, int64_t fallback, const std::string& what) {
  if (!v || v->kind == Value::Kind::kNone) return fallback;
  PF_CHECK(v->is_int(), what, " needs an integer argument, not ", type_name(*v));
  return v->as_int();
}

size_t length(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kUndefined: return 0;
    case Value::Kind::kString: return char_count(v.s);
    case Value::Kind::kList: return v.list->size();
    case Value::Kind::kDict:
    case Value::Kind::kNamespace: return v.dict->size();
    default: fail("object of type ", type_name(v), " has no length");
  }
}

std::string join(const List& items, const std::string& sep) {
  std::string out;
  for (size_t k = 0; k < items.size(); ++k) {
    if (k) out += sep;
    out += to_str(items[k]);
    check_string_size(out.size());
  }
  return out;
}

// Jinja's attribute lookup for selectattr and map: "a.b" follows a path; digits index lists.
Value attr_path(const Value& v, const std::string& path) {
  Value cur = v;
  size_t pos = 0;
  for (;;) {
    const size_t dot = path.find('.', pos);
    const std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    const bool digits = !part.empty() && part.size() < 18 &&
                        std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    cur = digits && cur.kind == Value::Kind::kList ? get_item(cur, Value::integer(std::stoll(part)))
                                                   : get_attr(cur, part);
    if (dot == std::string::npos || cur.is_undefined()) return cur;
    pos = dot + 1;
  }
}

Args rest_args(const Args& a, size_t from) {
  Args r;
  if (from < a.pos.size()) r.pos.assign(a.pos.begin() + from, a.pos.end());
  r.kw = a.kw;
  return r;
}

Value select(const Value& subject, const Args& a, bool by_attr, bool keep_if) {
  const std::string what = by_attr ? (keep_if ? "selectattr" : "rejectattr") : (keep_if ? "select" : "reject");
  const size_t test_at = by_attr ? 1 : 0;
  const std::string attr = by_attr ? str_arg(arg(a, 0, ""), what) : "";
  const Value* test = arg(a, test_at, "");
  if (test) PF_CHECK(test->is_string(), what, ": the test name must be a string");
  const Args test_args = rest_args(a, test_at + 1);
  List out;
  for (const Value& item : iterate(subject)) {
    const Value x = by_attr ? attr_path(item, attr) : item;
    const bool pass = test ? apply_test(test->s, x, test_args) : truthy(x);
    if (pass == keep_if) out.push_back(item);
  }
  return Value::make_list(std::move(out));
}

std::string indent(const std::string& s, const Value* width, bool first, bool blank) {
  std::string pad;
  if (width && width->is_string()) {
    pad = width->s;
  } else {
    const int64_t n = int_arg(width, 4, "indent");
    PF_CHECK(n >= 0 && n <= 1024, "indent: width must be between 0 and 1024");
    pad.assign(static_cast<size_t>(n), ' ');
  }
  // Jinja appends a newline before splitting, so a trailing newline keeps its empty line.
  std::vector<std::string> lines;
  const std::string text = s + "\n";
  for (size_t pos = 0, nl; (nl = text.find('\n', pos)) != std::string::npos; pos = nl + 1)
    lines.push_back(text.substr(pos, nl - pos));
  std::string out = lines[0];
  for (size_t k = 1; k < lines.size(); ++k) {
    out += '\n';
    if (blank || !lines[k].empty()) out += pad;
    out += lines[k];
    check_string_size(out.size());
  }
  return first ? pad + out : out;
}

}  // namespace

bool is_filter_name(const std::string& name) {
  return std::any_of(std::begin(kFilters), std::end(kFilters), [&](const char* f) { return name == f; });
}

bool is_test_name(const std::string& name) {
  return std::any_of(std::begin(kTests), std::end(kTests), [&](const char* t) { return name == t; });
}

Value apply_filter(const std::string& name, const Value& v, const Args& a) {
  const std::string what = "filter '" + name + "'";
  if (name == "trim") {
    check_args(a, what, {"chars"});
    const Value* chars = arg(a, 0, "chars");
    return Value::string(strip(to_str(v), chars && chars->is_string() ? &chars->s : nullptr, true, true));
  }
  if (name == "length" || name == "count") {
    check_args(a, what, {});
    return Value::integer(static_cast<int64_t>(length(v)));
  }
  if (name == "upper" || name == "lower" || name == "capitalize" || name == "title") {
    check_args(a, what, {});
    const std::string s = to_str(v);
    return Value::string(name == "upper" ? upper(s) : name == "lower" ? lower(s)
                         : name == "capitalize" ? capitalize(s) : title(s, false));
  }
  if (name == "tojson") {
    check_args(a, what, {"indent", "sort_keys", "ensure_ascii"});
    const int64_t ind = int_arg(arg(a, 0, "indent"), -1, what);
    PF_CHECK(ind <= 1024, "tojson: indent must be at most 1024");
    const Value* sort = arg(a, 1, "sort_keys");
    const Value* ascii = arg(a, 2, "ensure_ascii");
    std::string out = to_json(v, static_cast<int>(std::max<int64_t>(ind, -1)), sort && truthy(*sort),
                              ascii && truthy(*ascii));
    check_string_size(out.size());
    return Value::string(std::move(out));
  }
  if (name == "default" || name == "d") {
    check_args(a, what, {"default_value", "boolean"});
    const Value* fallback = arg(a, 0, "default_value");
    const Value* boolean = arg(a, 1, "boolean");
    const bool use = v.is_undefined() || (boolean && truthy(*boolean) && !truthy(v));
    return use ? (fallback ? *fallback : Value::string("")) : v;
  }
  if (name == "join") {
    check_args(a, what, {"d", "attribute"});
    const Value* sep = arg(a, 0, "d");
    const Value* attr = arg(a, 1, "attribute");
    List items = iterate(v);
    if (attr)
      for (Value& x : items) x = attr_path(x, to_str(*attr));
    return Value::string(join(items, sep ? to_str(*sep) : ""));
  }
  if (name == "replace") {
    check_args(a, what, {"old", "new", "count"});
    return Value::string(replace(to_str(v), str_arg(arg(a, 0, "old"), what), str_arg(arg(a, 1, "new"), what),
                                 int_arg(arg(a, 2, "count"), -1, what)));
  }
  if (name == "first" || name == "last") {
    check_args(a, what, {});
    const List items = iterate(v);
    if (items.empty()) return Value::undefined("no " + name + " item in an empty " + type_name(v));
    return name == "first" ? items.front() : items.back();
  }
  if (name == "string") {
    check_args(a, what, {});
    return Value::string(to_str(v));
  }
  if (name == "safe") {
    check_args(a, what, {});
    return v;
  }
  if (name == "int" || name == "float") {
    check_args(a, what, {"default"});
    const Value* fb = arg(a, 0, "default");
    const Value fallback = fb ? *fb : name == "int" ? Value::integer(0) : Value::number(0);
    double d = 0;
    if (v.is_number()) {
      d = v.as_double();
      if (name == "int" && v.is_int()) return Value::integer(v.as_int());
    } else if (v.is_string()) {
      const std::string s = strip(v.s, nullptr, true, true);
      char* end = nullptr;
      d = std::strtod(s.c_str(), &end);
      if (s.empty() || end != s.c_str() + s.size()) return fallback;
    } else {
      return fallback;
    }
    if (name == "float") return Value::number(d);
    if (!(d > -9.2e18 && d < 9.2e18)) return fallback;  // NaN and values int64 cannot hold
    return Value::integer(static_cast<int64_t>(d));
  }
  if (name == "abs") {
    check_args(a, what, {});
    if (v.kind == Value::Kind::kFloat) return Value::number(v.f < 0 ? -v.f : v.f);
    return v.is_int() && v.as_int() < 0 ? unary_minus(v) : v;
  }
  if (name == "list") {
    check_args(a, what, {});
    return Value::make_list(iterate(v));
  }
  if (name == "reverse") {
    check_args(a, what, {});
    List items = iterate(v);
    std::reverse(items.begin(), items.end());
    if (v.is_string()) return Value::string(join(items, ""));
    return Value::make_list(std::move(items));
  }
  if (name == "items") {
    check_args(a, what, {});
    if (v.is_undefined()) return Value::make_list({});
    PF_CHECK(v.kind == Value::Kind::kDict, "filter 'items' needs a dict, not ", type_name(v));
    List out;
    for (const auto& kv : *v.dict) out.push_back(Value::make_list({Value::string(kv.first), kv.second}));
    return Value::make_list(std::move(out));
  }
  if (name == "selectattr" || name == "rejectattr") return select(v, a, true, name == "selectattr");
  if (name == "select" || name == "reject") return select(v, a, false, name == "select");
  if (name == "map") {
    List out;
    if (const Value* attr = kwarg(a, "attribute")) {
      check_args(a, what, {"attribute", "default"});
      const Value* fallback = kwarg(a, "default");
      for (const Value& item : iterate(v)) {
        Value x = attr_path(item, to_str(*attr));
        out.push_back(x.is_undefined() && fallback ? *fallback : x);
      }
    } else {
      const std::string& filter = str_arg(arg(a, 0, ""), what);
      PF_CHECK(is_filter_name(filter) && filter != "map", "map: unknown filter '", filter, "'");
      const Args inner = rest_args(a, 1);
      for (const Value& item : iterate(v)) out.push_back(apply_filter(filter, item, inner));
    }
    return Value::make_list(std::move(out));
  }
  if (name == "indent") {
    check_args(a, what, {"width", "first", "blank"});
    const Value* first = arg(a, 1, "first");
    const Value* blank = arg(a, 2, "blank");
    return Value::string(indent(to_str(v), arg(a, 0, "width"), first && truthy(*first), blank && truthy(*blank)));
  }
  fail("unknown filter '", name, "'");
}

bool apply_test(const std::string& name, const Value& v, const Args& a) {
  using K = Value::Kind;
  const std::string what = "test '" + name + "'";
  const auto other = [&]() -> const Value& {
    PF_CHECK(a.pos.size() == 1 && a.kw.empty(), what, " takes one argument");
    return a.pos[0];
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.kind == K::kNone;
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.kind == K::kInt;
  if (name == "float") return v.kind == K::kFloat;
  if (name == "boolean") return v.kind == K::kBool;
  if (name == "true") return v.kind == K::kBool && v.b;
  if (name == "false") return v.kind == K::kBool && !v.b;
  if (name == "mapping") return v.kind == K::kDict;
  if (name == "iterable") return v.is_string() || v.kind == K::kList || v.kind == K::kDict || v.is_undefined();
  if (name == "sequence") return v.is_string() || v.kind == K::kList || v.kind == K::kDict;
  if (name == "callable") return v.kind == K::kMacro;
  if (name == "lower") return v.is_string() && lower(v.s) == v.s;
  if (name == "upper") return v.is_string() && upper(v.s) == v.s;
  if (name == "even" || name == "odd" || name == "divisibleby") {
    PF_CHECK(v.is_int(), what, " needs an integer, not ", type_name(v));
    const int64_t d = name == "divisibleby" ? int_arg(&other(), 1, what) : 2;
    PF_CHECK(d != 0, "divisibleby 0");
    const bool even = d == -1 || v.as_int() % d == 0;
    return name == "odd" ? !even : even;
  }
  if (name == "eq" || name == "equalto" || name == "==") return equal(v, other());
  if (name == "ne" || name == "!=") return !equal(v, other());
  if (name == "lt" || name == "<") return truthy(binary_op("<", v, other()));
  if (name == "le" || name == "<=") return truthy(binary_op("<=", v, other()));
  if (name == "gt" || name == ">") return truthy(binary_op(">", v, other()));
  if (name == "ge" || name == ">=") return truthy(binary_op(">=", v, other()));
  if (name == "in") return truthy(binary_op("in", v, other()));
  if (name == "sameas") {
    const Value& o = other();
    if (v.kind != o.kind) return false;
    if (v.kind == K::kList) return v.list == o.list;
    if (v.is_mapping()) return v.dict == o.dict;
    return equal(v, o);
  }
  fail("unknown test '", name, "'");
}

bool call_method(const Value& v, const std::string& name, const Args& a, Value& out) {
  const std::string what = "method '" + name + "'";
  if (v.is_string()) {
    const std::string& s = v.s;
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
      check_args(a, what, {"chars"});
      const Value* chars = arg(a, 0, "chars");
      const std::string* set = chars && chars->is_string() ? &chars->s : nullptr;
      out = Value::string(strip(s, set, name != "rstrip", name != "lstrip"));
    } else if (name == "upper" || name == "lower" || name == "capitalize" || name == "title") {
      check_args(a, what, {});
      out = Value::string(name == "upper" ? upper(s) : name == "lower" ? lower(s)
                          : name == "capitalize" ? capitalize(s) : title(s, true));
    } else if (name == "startswith" || name == "endswith") {
      check_args(a, what, {"prefix"});
      const Value* p = arg(a, 0, "prefix");
      PF_CHECK(p, what, " needs an argument");
      const List options = p->kind == Value::Kind::kList ? *p->list : List{*p};
      bool hit = false;
      for (const Value& o : options) {
        const std::string& t = str_arg(&o, what);
        hit = hit || (t.size() <= s.size() &&
                      (name == "startswith" ? s.compare(0, t.size(), t) == 0
                                            : s.compare(s.size() - t.size(), t.size(), t) == 0));
      }
      out = Value::boolean(hit);
    } else if (name == "split") {
      check_args(a, what, {"sep", "maxsplit"});
      const Value* sep = arg(a, 0, "sep");
      const bool has_sep = sep && sep->kind != Value::Kind::kNone;
      out = Value::make_list(split(s, has_sep ? &str_arg(sep, what) : nullptr,
                                   int_arg(arg(a, 1, "maxsplit"), -1, what)));
    } else if (name == "replace") {
      check_args(a, what, {"old", "new", "count"});
      out = Value::string(replace(s, str_arg(arg(a, 0, "old"), what), str_arg(arg(a, 1, "new"), what),
                                  int_arg(arg(a, 2, "count"), -1, what)));
    } else if (name == "find") {
      check_args(a, what, {"sub"});
      const size_t at = s.find(str_arg(arg(a, 0, "sub"), what));
      out = Value::integer(at == std::string::npos
                               ? -1
                               : static_cast<int64_t>(char_count(s.substr(0, at))));
    } else if (name == "join") {
      check_args(a, what, {"iterable"});
      const Value* items = arg(a, 0, "iterable");
      PF_CHECK(items, what, " needs an argument");
      out = Value::string(join(iterate(*items), s));
    } else {
      return false;
    }
    return true;
  }
  if (v.kind == Value::Kind::kDict) {
    if (name == "get") {
      check_args(a, what, {"key", "default"});
      const Value* key = arg(a, 0, "key");
      PF_CHECK(key, what, " needs a key");
      const Value* fallback = arg(a, 1, "default");
      const Value* hit = key->is_string() ? dict_find(*v.dict, key->s) : nullptr;
      out = hit ? *hit : fallback ? *fallback : Value::none();
    } else if (name == "items" || name == "keys" || name == "values") {
      check_args(a, what, {});
      List items;
      for (const auto& kv : *v.dict)
        items.push_back(name == "keys" ? Value::string(kv.first) : name == "values" ? kv.second
                        : Value::make_list({Value::string(kv.first), kv.second}));
      out = Value::make_list(std::move(items));
    } else {
      return false;
    }
    return true;
  }
  return false;
}

bool call_global(const std::string& name, const Args& a, Value& out) {
  if (name == "raise_exception") {
    const Value* msg = arg(a, 0, "message");
    throw RaisedError(msg ? to_str(*msg) : "raise_exception() called by the chat template");
  }
  if (name == "range") {
    PF_CHECK(a.kw.empty() && !a.pos.empty() && a.pos.size() <= 3, "range takes 1 to 3 integers");
    for (const Value& x : a.pos) PF_CHECK(x.is_int(), "range needs integers, not ", type_name(x));
    const int64_t start = a.pos.size() > 1 ? a.pos[0].as_int() : 0;
    const int64_t stop = a.pos.size() > 1 ? a.pos[1].as_int() : a.pos[0].as_int();
    const int64_t step = a.pos.size() > 2 ? a.pos[2].as_int() : 1;
    PF_CHECK(step != 0, "range step cannot be zero");
    List items;
    for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
      PF_CHECK(items.size() < kMaxListItems, "range of more than ", kMaxListItems, " items");
      items.push_back(Value::integer(i));
      if (step > 0 ? stop - i <= step : i - stop <= -step) break;
      i += step;
    }
    out = Value::make_list(std::move(items));
    return true;
  }
  if (name == "namespace" || name == "dict") {
    Dict items;
    for (const Value& x : a.pos) {  // namespace({'a': 1}) copies the dict
      PF_CHECK(x.kind == Value::Kind::kDict, name, "() takes a dict or keyword arguments");
      items.insert(items.end(), x.dict->begin(), x.dict->end());
    }
    for (const auto& kv : a.kw) items.push_back(kv);
    out = name == "dict" ? Value::make_dict(std::move(items)) : Value::make_namespace(std::move(items));
    return true;
  }
  if (name == "strftime_now") {
    PF_CHECK(a.pos.size() == 1 && a.pos[0].is_string() && a.kw.empty(), "strftime_now takes a format string");
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char buf[512];
    const size_t n = a.pos[0].s.empty() ? 0 : std::strftime(buf, sizeof buf, a.pos[0].s.c_str(), &tm);
    out = Value::string(std::string(buf, n));
    return true;
  }
  return false;
}

}  // namespace pf::jinja
