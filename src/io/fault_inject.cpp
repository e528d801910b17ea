#include "io/fault_inject.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace pf {

namespace {
long env_long(const char* name) {
  const char* s = std::getenv(name);
  return s ? std::strtol(s, nullptr, 10) : 0L;
}
std::atomic<long> g_ops{0};
}  // namespace

void file_op_point(const char* what, const std::string& path) {
  static const long target = env_long("PF_CRASH_AT_FILE_OP");
  static const bool trace = env_long("PF_TRACE_FILE_OPS") > 0;
  if (target <= 0 && !trace) return;
  const long n = ++g_ops;
  if (trace) std::fprintf(stderr, "file-op %ld %s %s\n", n, what, path.c_str());
  if (n == target) {
    std::fprintf(stderr, "fault injection: killed at file operation %ld (%s %s)\n", n, what,
                 path.c_str());
    std::fflush(stderr);
    ::kill(::getpid(), SIGKILL);
  }
}

}  // namespace pf
