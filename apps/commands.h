// Subcommands of the postformer CLI. Each registers its flags and its callback.
#pragma once
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace pf::cli {

void add_train(CLI::App& app);
void add_generate(CLI::App& app);
void add_eval(CLI::App& app);
void add_info(CLI::App& app);
void add_task(CLI::App& app);
void add_compare(CLI::App& app);
void add_plot(CLI::App& app);
void add_classify(CLI::App& app);
void add_serve(CLI::App& app);
void add_quantize(CLI::App& app);
void add_import_gguf(CLI::App& app);

// A flag value that is one number and nothing else ("0.97", not "0.97x" or ""); false
// otherwise, so the caller can name the flag in its error.
inline bool parse_whole_double(const std::string& s, double* out) {
  size_t used = 0;
  try {
    *out = std::stod(s, &used);
  } catch (const std::exception&) {
    return false;
  }
  return !s.empty() && used == s.size();
}

// For unsigned flags (seeds): digits only, below 2^64 (a minus would wrap, a larger value
// would saturate).
inline const CLI::Validator kUnsigned(
    [](std::string& v) {
      const bool digits = !v.empty() && v.find_first_not_of("0123456789") == std::string::npos;
      errno = 0;
      if (digits) (void)std::strtoull(v.c_str(), nullptr, 10);
      return digits && errno != ERANGE
                 ? std::string()
                 : std::string("must be an integer in [0, 2^64), got '") + v + "'";
    },
    "UINT");

}  // namespace pf::cli
