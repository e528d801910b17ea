// Errors: every user-facing failure is a pf::Error with a message that names the problem.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace pf {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

namespace detail {
inline void append(std::ostringstream&) {}
template <typename T, typename... Rest>
void append(std::ostringstream& os, const T& v, const Rest&... rest) {
  os << v;
  append(os, rest...);
}
}  // namespace detail

template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  std::ostringstream os;
  detail::append(os, args...);
  throw Error(os.str());
}

}  // namespace pf

// PF_CHECK(cond, "message parts", ...) throws pf::Error when cond is false.
#define PF_CHECK(cond, ...)               \
  do {                                    \
    if (!(cond)) ::pf::fail(__VA_ARGS__); \
  } while (0)
