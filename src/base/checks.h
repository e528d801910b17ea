// Range checks with messages that name the value ("--lr -1 is outside (0, 10]"), and
// size arithmetic that fails instead of wrapping.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "base/error.h"

namespace pf {

// lo <= v <= hi, or an error "NAME V is outside [LO, HI]".
inline void check_range(const std::string& name, int64_t v, int64_t lo, int64_t hi) {
  PF_CHECK(v >= lo && v <= hi, name, " ", v, " is outside [", lo, ", ", hi, "]");
}

// A finite v in the interval; open_lo / open_hi exclude the bound itself.
inline void check_range(const std::string& name, double v, double lo, double hi,
                        bool open_lo = false, bool open_hi = false) {
  const bool ok = std::isfinite(v) && (open_lo ? v > lo : v >= lo) && (open_hi ? v < hi : v <= hi);
  PF_CHECK(ok, name, " ", v, " is outside ", open_lo ? "(" : "[", lo, ", ", hi,
           open_hi ? ")" : "]");
}

// a * b for non-negative sizes; an error naming `what` when the product exceeds `limit`.
inline int64_t checked_mul(int64_t a, int64_t b, const std::string& what,
                           int64_t limit = std::numeric_limits<int64_t>::max()) {
  PF_CHECK(a >= 0 && b >= 0, what, ": negative size (", a, " x ", b, ")");
  PF_CHECK(a == 0 || b <= limit / a, what, ": ", a, " x ", b, " is too large");
  return a * b;
}

inline int64_t checked_add(int64_t a, int64_t b, const std::string& what,
                           int64_t limit = std::numeric_limits<int64_t>::max()) {
  PF_CHECK(a >= 0 && b >= 0, what, ": negative size (", a, " + ", b, ")");
  PF_CHECK(a <= limit - b, what, ": ", a, " + ", b, " is too large");
  return a + b;
}

}  // namespace pf
