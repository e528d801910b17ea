// `postformer import-gguf`: a llama.cpp GGUF file (llama, mamba, mamba2) as a model
// directory: config.json, model.safetensors (int8/bf16 kept as stored unless --weights says
// otherwise) and the tokenizer the file carries.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "apps/commands.h"
#include "base/error.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "io/gguf_import.h"
#include "models/compact_weights.h"

namespace pf::cli {

namespace {
namespace fs = std::filesystem;

struct ImportArgs {
  std::string gguf, out, weights;
};

void run_import(const ImportArgs& a) {
  const fs::path out = a.out;
  std::error_code ec;
  // A new or empty directory only: importing never replaces files it did not write.
  PF_CHECK(!fs::exists(out, ec) || (fs::is_directory(out, ec) && fs::is_empty(out, ec)), "--out ",
           out.string(), " exists and is not an empty directory; give a new or empty one");
  std::optional<WeightFormat> w;
  if (!a.weights.empty()) w = parse_weight_format(a.weights);
  GgufModel g = read_gguf_model(a.gguf, w);
  fs::create_directories(out, ec);
  PF_CHECK(!ec, "cannot create ", out.string(), ": ", ec.message());
  for (const auto& [name, bytes] : g.tokenizer_files) write_file_atomic((out / name).string(), bytes);
  write_model_files(out.string(), *g.model);
  std::printf("%s: %s, %ld parameters, %s weights (%.2f MiB)%s -> %s\n", a.gguf.c_str(),
              g.arch.c_str(), static_cast<long>(g.model->num_params()),
              weight_format_name(g.weights), model_weight_bytes(*g.model) / 1048576.0,
              g.tokenizer_files.empty() ? "" : (", " + g.tokenizer_files[0].first).c_str(),
              out.string().c_str());
  for (const std::string& n : g.notes) std::printf("note: %s\n", n.c_str());
}
}  // namespace

void add_import_gguf(CLI::App& app) {
  auto a = std::make_shared<ImportArgs>();
  auto* cmd = app.add_subcommand(
      "import-gguf", "Convert a llama.cpp GGUF file (llama, mamba, mamba2) to a model directory");
  cmd->add_option("--gguf", a->gguf, "GGUF file (F32, F16, BF16 or Q8_0 tensors)")->required();
  cmd->add_option("--out", a->out, "New or empty directory for the model")->required();
  cmd->add_option("--weights", a->weights,
                  "f32, bf16 or int8 (default: as stored: Q8_0 stays int8, BF16 bf16, F16 f32)")
      ->check(CLI::IsMember({"f32", "bf16", "int8"}));
  cmd->callback([a] { run_import(*a); });
}

}  // namespace pf::cli
