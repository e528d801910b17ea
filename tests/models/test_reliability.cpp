// Run directories that never destroy what we did not write, configs and weights checked
// before use, and the parameter count computed from a config alone.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "common/error_of.h"
#include "data/corpus.h"
#include "data/tokenizer.h"
#include "infer/generate.h"
#include "io/checkpoint.h"
#include "io/config_json.h"
#include "io/run_dir.h"
#include "models/lm.h"
#include "models/model_test_util.h"
#include "train/trainer.h"

namespace pf {
namespace {

namespace fs = std::filesystem;

using test::error_of;

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(RunDir, RefusesOutputsThatHoldOtherFiles) {
  test::TempDir d;
  write(d / "thesis.txt", "keep");
  EXPECT_NE(error_of([&] {
              RunDir::check_out_dir(d / "thesis.txt", false, false);
            }).find("is not a directory"),
            std::string::npos);
  fs::create_directories(d / "mine");
  write(d / "mine/notes.txt", "keep");
  for (bool overwrite : {false, true})
    EXPECT_NE(error_of([&] {
                RunDir::check_out_dir(d / "mine", overwrite, false);
              }).find("not a postformer run directory"),
              std::string::npos);
  EXPECT_NE(error_of([&] {
              RunDir::check_out_dir(d / "thesis.txt/sub", false, false);
            }).find("cannot be created"),
            std::string::npos);
  EXPECT_TRUE(fs::exists(d / "mine/notes.txt") && fs::exists(d / "thesis.txt"));
  fs::create_directories(d / "empty");
  EXPECT_NO_THROW(RunDir::check_out_dir(d / "empty", false, false));
  EXPECT_NO_THROW(RunDir::check_out_dir(d / "new/deeper", false, false));
}

TEST(RunDir, KeepsOneCompleteCheckpointAndNeverRemovesForeignFiles) {
  test::TempDir d;
  const std::string out = d / "run";
  auto fill = [](const std::string& text) {
    return [text](const std::string& tmp) {
      write(tmp + "/config.json", "{}");
      write(tmp + "/model.safetensors", text);
    };
  };
  std::string first, second;
  {
    RunDir run(out);
    first = run.save(2, fill("one"));
    EXPECT_EQ(resolve_checkpoint_dir(out), first);
    // A second run on the same directory is refused while this one holds it.
    EXPECT_NE(error_of([&] { RunDir again(out); }).find("in use by another postformer run"),
              std::string::npos);
    write(first + "/my_notes.txt", "keep");  // a file we did not write
    second = run.save(4, fill("two"));
    EXPECT_EQ(resolve_checkpoint_dir(out), second);
  }
  EXPECT_TRUE(fs::exists(first + "/my_notes.txt"));  // kept, with its directory
  EXPECT_FALSE(fs::exists(first + "/model.safetensors"));
  // Another run needs --overwrite (or --resume) to use it; the lock is gone with `run`.
  EXPECT_NE(error_of([&] { RunDir::check_out_dir(out, false, false); }).find("step 4"),
            std::string::npos);
  EXPECT_NO_THROW(RunDir::check_out_dir(out, true, false));
  EXPECT_NO_THROW(RunDir::check_out_dir(out, false, true));
  RunDir run(out);
  const std::string third = run.save(4, fill("three"));  // the same step again
  EXPECT_NE(third, second);
  EXPECT_EQ(resolve_checkpoint_dir(out), third);
  EXPECT_FALSE(fs::exists(second));
}

nlohmann::json tiny(const std::string& type) {
  nlohmann::json c = {
      {"model_type", type}, {"hidden_size", 32}, {"num_hidden_layers", 2}, {"vocab_size", 64}};
  if (type == "llama") c.update({{"intermediate_size", 48}, {"num_attention_heads", 4}});
  if (type == "mamba" || type == "mamba2") c.update({{"state_size", 8}});
  if (type == "mamba2") c.update({{"head_dim", 16}});
  if (type == "retnet") c.update({{"num_heads", 2}, {"retention_variant", "torchscale"}});
  return c;
}

TEST(Config, ParameterCountFromTheConfigIsExact) {
  for (const char* type : {"llama", "mamba", "mamba2", "retnet"}) {
    for (bool tied : {true, false}) {
      nlohmann::json c = tiny(type);
      c["tie_word_embeddings"] = tied;
      EXPECT_EQ(config_param_count(c), create_model(c, 1)->num_params()) << c.dump();
    }
  }
  nlohmann::json ss = {{"d_model", 32},
                       {"n_layer", 2},
                       {"vocab_size", 50},
                       {"ssm_cfg", {{"layer", "Mamba2"}, {"headdim", 16}}}};
  EXPECT_EQ(config_param_count(ss), create_model(ss, 1)->num_params());
}

TEST(Config, AbsurdSizesAndBadNumbersFailBeforeAnythingIsBuilt) {
  nlohmann::json c = tiny("llama");
  c["hidden_size"] = int64_t{1} << 62;
  EXPECT_NE(error_of([&] { create_model(c, 1); }).find("hidden_size"), std::string::npos);
  c = tiny("mamba2");
  c["head_dim"] = 0;
  EXPECT_NE(error_of([&] { create_model(c, 1); }).find("head_dim"), std::string::npos);
  c = tiny("retnet");
  c["norm_eps"] = -1.0;
  EXPECT_NE(error_of([&] { create_model(c, 1); }).find("norm_eps -1"), std::string::npos);
  c = tiny("llama");
  c["num_hidden_layers"] = 4000;
  c["hidden_size"] = 8192;
  c["intermediate_size"] = 1 << 20;  // ~100 T parameters: refused by the memory check
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_NE(error_of([&] { create_model(c, 1); }).find("more than this machine"),
            std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST(Checkpoint, WeightsMustMatchTheConfigAndBeFinite) {
  test::TempDir d;
  auto m = create_model(tiny("llama"), 3);
  save_model(d / "m", *m);
  // Fewer layers in the config than in the weights: the extra tensors are an error.
  nlohmann::json fewer = read_json_file(d / "m/config.json");
  fewer["num_hidden_layers"] = 1;
  write(d / "m/config.json", fewer.dump());
  EXPECT_NE(error_of([&] { load_model(d / "m"); }).find("unexpected tensor 'model.layers.1."),
            std::string::npos);
  // Far more layers than the weights hold: refused before the model is built.
  fewer["num_hidden_layers"] = 4000;
  write(d / "m/config.json", fewer.dump());
  EXPECT_NE(error_of([&] { load_model(d / "m"); }).find("does not match the checkpoint"),
            std::string::npos);
  // A NaN in one weight names the tensor.
  save_model(d / "m", *m);
  SafetensorsFile f(d / "m/model.safetensors");
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const std::string& name : f.names()) tensors.emplace_back(name, f.load_f32(name));
  tensors[1].second.data()[3] = INFINITY;
  const std::string bad = tensors[1].first;
  write_safetensors(d / "m/model.safetensors.new", tensors);
  fs::rename(d / "m/model.safetensors.new", d / "m/model.safetensors");
  const std::string msg = error_of([&] { load_model(d / "m"); });
  EXPECT_NE(msg.find("tensor '" + bad + "' holds inf at element 3"), std::string::npos) << msg;
}

TEST(Training, ValidationSplitTooSmallIsRefusedBeforeTheFirstStep) {
  std::string text;
  for (int i = 0; i < 60; ++i) text += "a short text line " + std::to_string(i) + "\n";
  ByteTokenizer tok;
  Corpus corpus(tok.encode(text), static_cast<int64_t>(text.size()), 0.01);
  auto m = create_model(tiny("llama"), 1);
  TrainOptions o;
  o.batch = 4, o.seq = 32, o.steps = 5, o.quiet = true;
  EXPECT_NE(error_of([&] { Trainer t(*m, corpus, o); }).find("validation split"),
            std::string::npos);
  o.batch = 1, o.seq = 8, o.log_every = 0;
  EXPECT_NE(error_of([&] { Trainer t(*m, corpus, o); }).find("--log-every 0"), std::string::npos);
}

}  // namespace
}  // namespace pf

namespace pf {
namespace {

TEST(Generate, BannedIdsAreNeverSampled) {
  auto m = create_model(tiny("llama"), 2);
  GenerateOptions g;
  g.max_new = 40;
  g.sampling.temperature = 1.5f;
  for (int32_t id = 0; id < 64; ++id)
    if (id != 7 && id != 9) g.banned_ids.push_back(id);  // as a vocabulary full of holes
  auto s = m->new_session(64);
  const std::vector<int32_t> out = generate(*s, {1, 2}, g, nullptr);
  ASSERT_EQ(out.size(), 40u);
  for (int32_t id : out) EXPECT_TRUE(id == 7 || id == 9) << id;
}

}  // namespace
}  // namespace pf
