// Subcommands of the postformer CLI. Each registers its flags and its callback.
#pragma once
#include <CLI/CLI.hpp>

namespace pf::cli {

void add_train(CLI::App& app);
void add_generate(CLI::App& app);
void add_eval(CLI::App& app);
void add_info(CLI::App& app);

}  // namespace pf::cli
