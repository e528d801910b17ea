// `postformer info`: config, parameter count and memory of a model directory or shape.
#include <cstdio>
#include <memory>

#include "apps/commands.h"
#include "apps/model_flags.h"
#include "apps/weights_flag.h"
#include "base/cpu_features.h"
#include "models/compact_weights.h"
#include "base/checks.h"
#include "io/checkpoint.h"
#include "models/limits.h"

namespace pf::cli {

namespace {
struct InfoArgs {
  std::string model_dir, weights;
  ModelFlags model;
  int64_t at_context = 2048;
};

std::string mib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MiB", bytes / (1024.0 * 1024.0));
  return buf;
}

void run_info(const InfoArgs& a) {
  check_range("--at-context", a.at_context, 1, kMaxPositions);
  std::unique_ptr<LanguageModel> m =
      a.model_dir.empty() ? create_model(a.model.config(), 0) : load_model(a.model_dir);
  apply_weights_flag(*m, a.weights);
  const int64_t n = m->num_params();
  std::printf("architecture: %s\n", m->arch().c_str());
  std::printf("config: %s\n", m->config_json().dump(2).c_str());
  std::printf("parameters: %ld (%.2fM)\n", static_cast<long>(n), n / 1e6);
  std::printf("weights: %s, %s in memory (f32 would be %s)\n",
              weight_format_name(model_weight_format(*m)),
              mib(static_cast<double>(model_weight_bytes(*m))).c_str(), mib(4.0 * n).c_str());
  std::printf("inference state at context %ld: %s (%ld bytes)\n", static_cast<long>(a.at_context),
              mib(static_cast<double>(m->state_bytes(a.at_context))).c_str(),
              static_cast<long>(m->state_bytes(a.at_context)));
  std::printf("forward FLOPs per token at that context: %.3g\n", m->flops_per_token(a.at_context));
  for (const std::string& line : m->describe()) std::printf("%s\n", line.c_str());
  std::printf("cpu: %s; instruction sets: %s (native bf16: %s); build: %s\n",
              cpu_features().brand.c_str(), cpu_feature_list().c_str(),
              cpu_has_native_bf16() ? "yes" : "no", build_feature_list().c_str());
}
}  // namespace

void add_info(CLI::App& app) {
  auto a = std::make_shared<InfoArgs>();
  auto* cmd = app.add_subcommand("info", "Show config, parameters and memory of a model");
  cmd->add_option("--model", a->model_dir, "Model directory (else the shape flags below)");
  a->model.add_to(*cmd);
  cmd->add_option("--at-context", a->at_context, "Context length for the memory estimate")
      ->capture_default_str();
  add_weights_flag(cmd, a->weights);
  cmd->callback([a] { run_info(*a); });
}

}  // namespace pf::cli
