// Subcommands of the postformer CLI. Each registers its flags and its callback.
#pragma once
#include <CLI/CLI.hpp>

namespace pf::cli {

void add_train(CLI::App& app);
void add_generate(CLI::App& app);
void add_eval(CLI::App& app);
void add_info(CLI::App& app);

// For unsigned flags (seeds): a leading minus would otherwise wrap to a huge value.
inline const CLI::Validator kUnsigned(
    [](std::string& v) {
      return v.empty() || v[0] == '-' ? std::string("must be a non-negative integer, got '") + v + "'"
                                      : std::string();
    },
    "UINT");

}  // namespace pf::cli
