// postformer: train, generate, eval and inspect sequence models from the command line.
#include <cstdio>
#include <string>

#include "apps/commands.h"
#include "base/error.h"

int main(int argc, char** argv) {
  CLI::App app{"postformer: RetNet, Mamba, Perceiver and Transformer models in C++"};
  app.require_subcommand(1);
  pf::cli::add_train(app);
  pf::cli::add_generate(app);
  pf::cli::add_eval(app);
  pf::cli::add_info(app);
  pf::cli::add_task(app);
  pf::cli::add_compare(app);
  pf::cli::add_plot(app);
  pf::cli::add_classify(app);
  pf::cli::add_serve(app);
  pf::cli::add_quantize(app);
  pf::cli::add_import_gguf(app);
  // An empty value ("--steps ''") would read as 0; only a prompt may be empty.
  for (int i = 1; i + 1 < argc; ++i) {
    const std::string flag = argv[i];
    if (flag.rfind("--", 0) == 0 && flag != "--prompt" && argv[i + 1][0] == '\0') {
      std::fprintf(stderr, "error: %s was given an empty value\n", flag.c_str());
      return 1;
    }
  }
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--", 0) == 0 && arg.size() > 2 && arg.back() == '=' &&
        arg.rfind("--prompt=", 0) != 0) {
      std::fprintf(stderr, "error: %s was given an empty value\n", arg.c_str());
      return 1;
    }
  }
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
