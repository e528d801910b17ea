// Resident memory of this process from /proc (Linux), for memory benchmarks and tests.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

namespace pf {

// A "Key:   N kB" field of /proc/self/status in KiB (e.g. "VmHWM:", "VmRSS:"); -1 if absent.
inline long proc_status_kib(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(std::string(key).size()));
  return -1;
}

// Physical memory of the machine in bytes (0 when unknown).
inline int64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page : 0;
}

inline long peak_rss_kib() { return proc_status_kib("VmHWM:"); }
inline long current_rss_kib() { return proc_status_kib("VmRSS:"); }

#if defined(__SANITIZE_ADDRESS__)
#define PF_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PF_ASAN 1
#endif
#endif

// Resets the peak (VmHWM) to the current RSS; false where /proc does not allow it, and
// under AddressSanitizer, whose shadow memory and quarantine make RSS meaningless.
inline bool reset_peak_rss() {
#ifdef PF_ASAN
  return false;
#endif
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

}  // namespace pf
