// Subcommands of the postformer CLI. Each registers its flags and its callback.
#pragma once
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdlib>
#include <string>

namespace pf::cli {

void add_train(CLI::App& app);
void add_generate(CLI::App& app);
void add_eval(CLI::App& app);
void add_info(CLI::App& app);
void add_task(CLI::App& app);
void add_compare(CLI::App& app);
void add_plot(CLI::App& app);

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
