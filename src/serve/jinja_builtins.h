// What Jinja and HF give a chat template besides syntax: operators, filters, tests, the str
// and dict methods templates call, and the global functions. Errors here are plain pf::Error
// messages; the renderer adds the line and column of the expression that failed.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "serve/jinja_value.h"

namespace pf::jinja {

// No string the template builds may be larger (a bound on `'x' * 10**9` and the like).
constexpr size_t kMaxStringBytes = size_t{64} << 20;
// range() and repetition make lists of at most this many items.
constexpr size_t kMaxListItems = size_t{1} << 20;

// Thrown by raise_exception(msg): the message is the template's own, passed on unchanged.
class RaisedError : public Error {
 public:
  explicit RaisedError(const std::string& msg) : Error(msg) {}
};

struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
};

// Checked at parse time, so a misspelt filter or test fails before any rendering.
bool is_filter_name(const std::string& name);
bool is_test_name(const std::string& name);

// op: + - * / // % ** ~ == != < > <= >= in notin.
Value binary_op(const std::string& op, const Value& a, const Value& b);
Value unary_minus(const Value& v);
// a.name: a dict's key or a namespace's attribute; undefined when absent.
Value get_attr(const Value& v, const std::string& name);
// a[key]; undefined when out of range or absent.
Value get_item(const Value& v, const Value& key);
// a[start:stop:step] on a list or string; null bounds are the defaults.
Value get_slice(const Value& v, const Value* start, const Value* stop, const Value* step);
// What `for x in v` visits: list items, dict keys, string characters; undefined is empty.
List iterate(const Value& v);
void check_string_size(size_t bytes);

Value apply_filter(const std::string& name, const Value& subject, const Args& args);
bool apply_test(const std::string& name, const Value& v, const Args& args);
// v.name(args) for the str and dict methods; false when v has no such method.
bool call_method(const Value& v, const std::string& name, const Args& args, Value& out);
// raise_exception, range, namespace, dict, strftime_now; false when name is none of them.
bool call_global(const std::string& name, const Args& args, Value& out);

}  // namespace pf::jinja
