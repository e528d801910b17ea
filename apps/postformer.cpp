// postformer: train, generate, eval and inspect sequence models from the command line.
#include <cstdio>

#include "apps/commands.h"
#include "base/error.h"

int main(int argc, char** argv) {
  CLI::App app{"postformer: RetNet, Mamba, Perceiver and Transformer models in C++"};
  app.require_subcommand(1);
  pf::cli::add_train(app);
  pf::cli::add_generate(app);
  pf::cli::add_eval(app);
  pf::cli::add_info(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const pf::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
