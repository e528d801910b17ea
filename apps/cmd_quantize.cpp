// `postformer quantize`: writes a model directory whose linear and embedding matrices are
// bf16 or int8 (with scales), plus the tokenizer files; loading it needs no flag.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "apps/commands.h"
#include "base/error.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "io/config_json.h"
#include "io/read_file.h"
#include "models/compact_weights.h"

namespace pf::cli {

namespace {
namespace fs = std::filesystem;

struct QuantizeArgs {
  std::string model_dir, to, out;
};

// Files besides the weights that make a model directory usable (tokenizer, chat template).
constexpr const char* kCompanions[] = {"tokenizer.json", "tokenizer.model",
                                       "tokenizer_config.json", "special_tokens_map.json",
                                       "generation_config.json"};

// The output directory must be new, empty, or one this command wrote before: nothing else
// in it is ever replaced.
void check_out_dir(const fs::path& out, const fs::path& src) {
  std::error_code ec;
  PF_CHECK(!fs::exists(out, ec) || fs::is_directory(out, ec), "--out ", out.string(),
           " exists and is not a directory");
  PF_CHECK(!fs::exists(out) || !fs::equivalent(out, src, ec), "--out ", out.string(),
           " is the model directory itself; give a new one");
  if (!fs::exists(out) || fs::is_empty(out, ec)) return;
  const fs::path cfg = out / "config.json";
  bool ours = false;
  if (fs::exists(cfg)) {
    try {
      const nlohmann::json j = read_json_file(cfg.string());
      ours = j.is_object() && j.contains("quantization") && j["quantization"].is_object() &&
             j["quantization"].value("method", "") == "postformer";
    } catch (const Error&) {
    }
  }
  PF_CHECK(ours, "--out ", out.string(),
           " is not empty and is not a directory `quantize` wrote; give a new or empty one");
  for (const auto& e : fs::directory_iterator(out)) {
    const std::string name = e.path().filename().string();
    bool known = name == "config.json" || name == "model.safetensors";
    for (const char* c : kCompanions) known = known || name == c;
    PF_CHECK(known, "--out ", out.string(), " holds ", name,
                    ", which `quantize` did not write; give a new or empty directory");
  }
}

void run_quantize(const QuantizeArgs& a) {
  const WeightFormat f = parse_weight_format(a.to);
  PF_CHECK(f != WeightFormat::F32, "--to must be bf16 or int8");
  const fs::path src = resolve_checkpoint_dir(a.model_dir), out = a.out;
  check_out_dir(out, src);
  auto m = load_model(src.string());
  const WeightFormat was = model_weight_format(*m);
  PF_CHECK(was == WeightFormat::F32, src.string(), " is already ", weight_format_name(was),
           "; quantise its f32 original instead");
  const int64_t before = model_weight_bytes(*m);
  const int64_t n = convert_weights(*m, f);
  std::error_code ec;
  fs::create_directories(out, ec);
  PF_CHECK(!ec, "cannot create ", out.string(), ": ", ec.message());
  for (const char* c : kCompanions)
    if (fs::exists(src / c)) write_file_atomic((out / c).string(), read_file((src / c).string()));
  write_model_files(out.string(), *m);
  std::printf("%s: %ld matrices to %s, weights %.2f MiB -> %.2f MiB, written to %s\n",
              src.string().c_str(), static_cast<long>(n), weight_format_name(f),
              before / 1048576.0, model_weight_bytes(*m) / 1048576.0, out.string().c_str());
}
}  // namespace

void add_quantize(CLI::App& app) {
  auto a = std::make_shared<QuantizeArgs>();
  auto* cmd = app.add_subcommand(
      "quantize", "Write a copy of a model with bf16 or int8 matrices (loads with no flag)");
  cmd->add_option("--model", a->model_dir, "f32 model directory")->required();
  cmd->add_option("--to", a->to, "bf16 or int8 (32 inputs per f32 scale)")
      ->required()
      ->check(CLI::IsMember({"bf16", "int8"}));
  cmd->add_option("--out", a->out, "New directory for the quantised model")->required();
  cmd->callback([a] { run_quantize(*a); });
}

}  // namespace pf::cli
