#include "base/threads.h"

#include <omp.h>

#include "base/error.h"

namespace pf {

void set_num_threads(int n) {
  // Thousands of threads exhaust the OpenMP runtime; a bound well past any core count.
  PF_CHECK(n >= 0 && n <= kMaxThreads, "--threads ", n, " is outside [0, ", kMaxThreads,
           "] (0 = all cores)");
  if (n > 0) omp_set_num_threads(n);
}

int num_threads() { return omp_get_max_threads(); }

}  // namespace pf
