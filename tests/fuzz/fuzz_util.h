// Shared by the libFuzzer targets: inputs reach the parsers as files (as outside bytes do),
// and a pf::Error is the one acceptable way to refuse them. Any other exception escaping a
// parser is a bug (a message that does not name the problem) and aborts the run.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "base/error.h"

namespace pf::fuzz {

// A per-process scratch file holding the input; overwritten on each call.
inline std::string write_input(const uint8_t* data, size_t size, const char* name) {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/pf_fuzz_XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    if (d == nullptr) std::abort();
    return std::string(d);
  }();
  const std::string path = dir + "/" + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

// Runs f; pf::Error is a clean refusal, anything else is reported and aborts.
template <typename F>
void expect_clean(F&& f) {
  try {
    f();
  } catch (const Error&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "escaped exception (not a pf::Error): %s\n", e.what());
    std::abort();
  }
}

}  // namespace pf::fuzz
