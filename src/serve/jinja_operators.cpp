// Operators, attribute and item access, slicing and iteration with Python's semantics
// (floor division and modulo round toward -inf, negative indices count from the end).
// Integers are 64-bit: where Python would grow a big integer this is an overflow error.
#include <cmath>

#include "serve/jinja_builtins.h"

namespace pf::jinja {

namespace {

std::string undefined_why(const Value& v) { return v.s.empty() ? "the value is undefined" : v.s; }

[[noreturn]] void bad_operands(const std::string& op, const Value& a, const Value& b) {
  fail("unsupported operand types for ", op, ": ", type_name(a), " and ", type_name(b));
}

constexpr const char* kOverflow = "integer overflow (integers are 64-bit here)";

int64_t add(int64_t a, int64_t b) {
  int64_t r;
  PF_CHECK(!__builtin_add_overflow(a, b, &r), kOverflow);
  return r;
}
int64_t sub(int64_t a, int64_t b) {
  int64_t r;
  PF_CHECK(!__builtin_sub_overflow(a, b, &r), kOverflow);
  return r;
}
int64_t mul(int64_t a, int64_t b) {
  int64_t r;
  PF_CHECK(!__builtin_mul_overflow(a, b, &r), kOverflow);
  return r;
}

Value repeat_string(const std::string& s, int64_t n) {
  if (n <= 0 || s.empty()) return Value::string("");
  check_string_size(static_cast<uint64_t>(n) > kMaxStringBytes / s.size() ? kMaxStringBytes + 1
                                                                           : s.size() * n);
  std::string out;
  out.reserve(s.size() * n);
  for (int64_t k = 0; k < n; ++k) out += s;
  return Value::string(std::move(out));
}

Value repeat_list(const List& l, int64_t n) {
  if (n <= 0 || l.empty()) return Value::make_list({});
  PF_CHECK(static_cast<uint64_t>(n) <= kMaxListItems / l.size(), "list repetition makes more than ",
           kMaxListItems, " items");
  List out;
  out.reserve(l.size() * n);
  for (int64_t k = 0; k < n; ++k) out.insert(out.end(), l.begin(), l.end());
  return Value::make_list(std::move(out));
}

int64_t int_pow(int64_t base, int64_t exp) {
  int64_t result = 1;
  while (exp > 0) {
    if (exp & 1) result = mul(result, base);
    exp >>= 1;
    if (exp > 0) base = mul(base, base);
  }
  return result;
}

// -1, 0, 1 as a < b, ==, >; an error for types Python cannot order.
int order(const Value& a, const Value& b, const std::string& op) {
  if (a.is_number() && b.is_number()) {
    if (a.kind == Value::Kind::kFloat || b.kind == Value::Kind::kFloat) {
      const double x = a.as_double(), y = b.as_double();
      return x < y ? -1 : x > y ? 1 : 0;
    }
    return a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int() ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) return a.s < b.s ? -1 : a.s > b.s ? 1 : 0;
  if (a.kind == Value::Kind::kList && b.kind == Value::Kind::kList) {
    const List& x = *a.list;
    const List& y = *b.list;
    for (size_t k = 0; k < x.size() && k < y.size(); ++k)
      if (!equal(x[k], y[k])) return order(x[k], y[k], op);
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  fail("cannot compare ", type_name(a), " and ", type_name(b), " with ", op);
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind) {
    case Value::Kind::kString:
      PF_CHECK(item.is_string(), "'in <string>' needs a string on the left, not ", type_name(item));
      return container.s.find(item.s) != std::string::npos;
    case Value::Kind::kList:
      for (const Value& x : *container.list)
        if (equal(x, item)) return true;
      return false;
    case Value::Kind::kDict:
    case Value::Kind::kNamespace:
      return item.is_string() && dict_find(*container.dict, item.s) != nullptr;
    case Value::Kind::kUndefined: return false;  // iterating an undefined value finds nothing
    default: fail("cannot look for a value in ", type_name(container));
  }
}

// Python's rules for a slice bound: negative counts from the end, then clamp.
int64_t slice_bound(const Value* v, int64_t n, int64_t step, bool is_start) {
  if (!v || v->kind == Value::Kind::kNone || v->is_undefined())
    return is_start ? (step > 0 ? 0 : n - 1) : (step > 0 ? n : -1);
  PF_CHECK(v->is_int(), "slice indices must be integers or none, not ", type_name(*v));
  int64_t i = v->as_int();
  if (i < 0) i = i < -n ? (step > 0 ? 0 : -1) : i + n;
  else if (i >= n) i = step > 0 ? n : n - 1;
  return i;
}

}  // namespace

void check_string_size(size_t bytes) {
  PF_CHECK(bytes <= kMaxStringBytes, "string of ", bytes, " bytes is larger than the ",
           kMaxStringBytes, " bytes allowed");
}

Value unary_minus(const Value& v) {
  if (v.kind == Value::Kind::kFloat) return Value::number(-v.f);
  PF_CHECK(v.is_int(), "bad operand type for unary -: ", type_name(v));
  PF_CHECK(v.as_int() != INT64_MIN, kOverflow);
  return Value::integer(-v.as_int());
}

Value binary_op(const std::string& op, const Value& a, const Value& b) {
  if (op == "~") {
    std::string s = to_str(a);
    const std::string t = to_str(b);
    check_string_size(s.size() + t.size());
    return Value::string(s + t);
  }
  if (op == "==") return Value::boolean(equal(a, b));
  if (op == "!=") return Value::boolean(!equal(a, b));
  if (op == "in") return Value::boolean(contains(b, a));
  if (op == "notin") return Value::boolean(!contains(b, a));
  if (a.is_undefined() || b.is_undefined())
    fail("cannot use ", op, " on an undefined value (", undefined_why(a.is_undefined() ? a : b), ")");
  if (op == "<") return Value::boolean(order(a, b, op) < 0);
  if (op == ">") return Value::boolean(order(a, b, op) > 0);
  if (op == "<=") return Value::boolean(order(a, b, op) <= 0);
  if (op == ">=") return Value::boolean(order(a, b, op) >= 0);

  const bool ints = a.is_int() && b.is_int();
  const bool nums = a.is_number() && b.is_number();
  if (op == "+") {
    if (ints) return Value::integer(add(a.as_int(), b.as_int()));
    if (nums) return Value::number(a.as_double() + b.as_double());
    if (a.is_string() && b.is_string()) {
      check_string_size(a.s.size() + b.s.size());
      return Value::string(a.s + b.s);
    }
    if (a.kind == Value::Kind::kList && b.kind == Value::Kind::kList) {
      PF_CHECK(a.list->size() + b.list->size() <= kMaxListItems, "list longer than ", kMaxListItems);
      List out = *a.list;
      out.insert(out.end(), b.list->begin(), b.list->end());
      return Value::make_list(std::move(out));
    }
    bad_operands(op, a, b);
  }
  if (op == "-") {
    if (ints) return Value::integer(sub(a.as_int(), b.as_int()));
    if (nums) return Value::number(a.as_double() - b.as_double());
    bad_operands(op, a, b);
  }
  if (op == "*") {
    if (ints) return Value::integer(mul(a.as_int(), b.as_int()));
    if (nums) return Value::number(a.as_double() * b.as_double());
    if (a.is_string() && b.is_int()) return repeat_string(a.s, b.as_int());
    if (a.is_int() && b.is_string()) return repeat_string(b.s, a.as_int());
    if (a.kind == Value::Kind::kList && b.is_int()) return repeat_list(*a.list, b.as_int());
    if (a.is_int() && b.kind == Value::Kind::kList) return repeat_list(*b.list, a.as_int());
    bad_operands(op, a, b);
  }
  if (!nums) {
    if (op == "%" && a.is_string()) fail("string formatting with % is not supported");
    bad_operands(op, a, b);
  }
  if (op == "/") {
    PF_CHECK(b.as_double() != 0, "division by zero");
    return Value::number(a.as_double() / b.as_double());
  }
  if (op == "//" || op == "%") {
    if (ints) {
      const int64_t x = a.as_int(), y = b.as_int();
      PF_CHECK(y != 0, op == "%" ? "modulo by zero" : "division by zero");
      if (y == -1) {  // INT64_MIN / -1 overflows in C++
        if (op == "%") return Value::integer(0);
        PF_CHECK(x != INT64_MIN, kOverflow);
        return Value::integer(-x);
      }
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {
        --q;
        m += y;
      }
      return Value::integer(op == "%" ? m : q);
    }
    const double x = a.as_double(), y = b.as_double();
    PF_CHECK(y != 0, op == "%" ? "modulo by zero" : "division by zero");
    if (op == "//") return Value::number(std::floor(x / y));
    double m = std::fmod(x, y);
    if (m != 0 && ((m < 0) != (y < 0))) m += y;
    return Value::number(m);
  }
  if (op == "**") {
    if (ints && b.as_int() >= 0) return Value::integer(int_pow(a.as_int(), b.as_int()));
    return Value::number(std::pow(a.as_double(), b.as_double()));
  }
  fail("unknown operator ", op);
}

Value get_attr(const Value& v, const std::string& name) {
  if (v.is_undefined())
    fail("cannot read attribute '", name, "' of an undefined value (", undefined_why(v), ")");
  if (v.is_mapping()) {
    if (const Value* x = dict_find(*v.dict, name)) return *x;
    return Value::undefined(std::string(type_name(v)) + " has no attribute '" + name + "'");
  }
  return Value::undefined(std::string(type_name(v)) + " has no attribute '" + name + "'");
}

Value get_item(const Value& v, const Value& key) {
  if (v.is_undefined())
    fail("cannot read item ", repr(key), " of an undefined value (", undefined_why(v), ")");
  if (v.is_mapping()) {
    if (key.is_string())
      if (const Value* x = dict_find(*v.dict, key.s)) return *x;
    return Value::undefined(std::string(type_name(v)) + " has no key " + repr(key));
  }
  if ((v.kind == Value::Kind::kList || v.is_string()) && key.is_int()) {
    const std::vector<size_t> starts = v.is_string() ? char_starts(v.s) : std::vector<size_t>{};
    const int64_t n = static_cast<int64_t>(v.is_string() ? starts.size() : v.list->size());
    int64_t i = key.as_int();
    if (i < 0 && i >= -n) i += n;
    if (i < 0 || i >= n)
      return Value::undefined(std::string(type_name(v)) + " index " + std::to_string(key.as_int()) +
                              " out of range");
    if (!v.is_string()) return (*v.list)[i];
    const size_t end = i + 1 < n ? starts[i + 1] : v.s.size();
    return Value::string(v.s.substr(starts[i], end - starts[i]));
  }
  return Value::undefined(std::string(type_name(v)) + " has no item " + repr(key));
}

Value get_slice(const Value& v, const Value* start, const Value* stop, const Value* step_v) {
  if (v.is_undefined()) fail("cannot slice an undefined value (", undefined_why(v), ")");
  PF_CHECK(v.kind == Value::Kind::kList || v.is_string(), "cannot slice ", type_name(v));
  int64_t step = 1;
  if (step_v && step_v->kind != Value::Kind::kNone && !step_v->is_undefined()) {
    PF_CHECK(step_v->is_int(), "slice step must be an integer, not ", type_name(*step_v));
    step = step_v->as_int();
  }
  PF_CHECK(step != 0, "slice step cannot be zero");
  const std::vector<size_t> starts = v.is_string() ? char_starts(v.s) : std::vector<size_t>{};
  const int64_t n = static_cast<int64_t>(v.is_string() ? starts.size() : v.list->size());
  const int64_t lo = slice_bound(start, n, step, true);
  const int64_t hi = slice_bound(stop, n, step, false);
  std::vector<int64_t> picked;
  // Steps toward hi without ever computing an index past it (a huge step must not overflow).
  for (int64_t i = lo; step > 0 ? i < hi : i > hi;) {
    picked.push_back(i);
    if (step > 0 ? hi - i <= step : i - hi <= -step) break;
    i += step;
  }
  if (!v.is_string()) {
    List out;
    out.reserve(picked.size());
    for (const int64_t i : picked) out.push_back((*v.list)[i]);
    return Value::make_list(std::move(out));
  }
  std::string out;
  for (const int64_t i : picked) {
    const size_t end = i + 1 < n ? starts[i + 1] : v.s.size();
    out.append(v.s, starts[i], end - starts[i]);
  }
  return Value::string(std::move(out));
}

List iterate(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kUndefined: return {};
    case Value::Kind::kList: return *v.list;
    case Value::Kind::kDict: {
      List keys;
      for (const auto& kv : *v.dict) keys.push_back(Value::string(kv.first));
      return keys;
    }
    case Value::Kind::kString: {
      List chars;
      const std::vector<size_t> starts = char_starts(v.s);
      for (size_t k = 0; k < starts.size(); ++k) {
        const size_t end = k + 1 < starts.size() ? starts[k + 1] : v.s.size();
        chars.push_back(Value::string(v.s.substr(starts[k], end - starts[k])));
      }
      return chars;
    }
    default: fail("cannot iterate over ", type_name(v));
  }
}

}  // namespace pf::jinja
