// Classification trains with the shared loop: a short run on a small Fashion-MNIST subset
// (Debian's dataset-fashion-mnist, installed by scripts/setup.sh) beats chance (10%) by a
// wide margin (30% = 3x chance), for Perceiver IO and a sequence backbone; resume
// reproduces the losses bit for bit.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include "data/classify_data.h"
#include "models/classify/classifier.h"
#include "train/classify_task.h"
#include "train/trainer.h"

namespace pf {
namespace {

// Budget: 3000 training images as 7x7 patches of 4 pixels, 250 steps of 32.
struct Subset {
  InputSpec spec;
  LabeledSet train, val;
  Subset() {
    spec.patch = 4;
    const LabeledSet all = load_classify_data("fashion-mnist", spec, "train", 3300);
    split_validation(all, 11, &train, &val);
  }
};

nlohmann::json with_input(nlohmann::json j, const InputSpec& s) {
  j["input_length"] = s.length();
  j["input_channels"] = s.channels();
  j["num_labels"] = 10;
  return j;
}

double train_and_validate(const nlohmann::json& cfg, const Subset& d, int64_t steps) {
  auto m = create_classifier(cfg, 1);
  ClassifyTask task(*m, d.spec, d.train, d.val);
  TrainOptions o;
  o.batch = 32;
  o.steps = steps;
  o.warmup = 20;
  o.lr = 2e-3;
  o.eval_every = 0;
  o.quiet = true;
  Trainer t(task, o);
  return t.run().val_bpb;  // validation accuracy in %
}

TEST(ClassifyTraining, ShortRunsBeatChanceByAWideMargin) {
  ASSERT_TRUE(std::filesystem::exists(kFashionMnistDir))
      << kFashionMnistDir << " is missing: run bash scripts/setup.sh (dataset-fashion-mnist)";
  const Subset d;
  ASSERT_GT(d.val.n, 250);  // every 11th of each class
  const double perceiver = train_and_validate(
      with_input({{"model_type", "perceiver_io"}, {"num_latents", 16}, {"d_latents", 64},
                  {"num_self_attends_per_block", 2}, {"num_cross_attention_heads", 4}},
                 d.spec),
      d, 250);
  EXPECT_GT(perceiver, 30.0) << "Perceiver IO after 250 steps";
  const double mamba = train_and_validate(
      with_input({{"model_type", "sequence_classifier"},
                  {"backbone",
                   {{"model_type", "mamba"}, {"hidden_size", 64}, {"num_hidden_layers", 2},
                    {"vocab_size", 2}, {"state_size", 8}}}},
                 d.spec),
      d, 250);
  EXPECT_GT(mamba, 30.0) << "Mamba backbone after 250 steps";
}

TEST(ClassifyTraining, ResumeContinuesTheSameRun) {
  const Subset d;
  const nlohmann::json cfg = with_input(
      {{"model_type", "perceiver_io"}, {"num_latents", 8}, {"d_latents", 32},
       {"num_self_attends_per_block", 1}},
      d.spec);
  const auto dir = std::filesystem::temp_directory_path() / ("pf_cls_resume_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  TrainOptions o;
  o.batch = 16;
  o.steps = 12;
  o.warmup = 2;
  o.eval_every = 0;
  o.quiet = true;
  auto full = create_classifier(cfg, 1);
  ClassifyTask tf(*full, d.spec, d.train, d.val);
  const std::vector<double> want = Trainer(tf, o).run().losses;
  o.out_dir = dir.string();
  o.stop_at_step = 5;
  auto a = create_classifier(cfg, 1);
  ClassifyTask ta(*a, d.spec, d.train, d.val);
  std::vector<double> got = Trainer(ta, o).run().losses;
  o.stop_at_step = 0;
  auto b = create_classifier(cfg, 99);  // weights come from the checkpoint
  ClassifyTask tb(*b, d.spec, d.train, d.val);
  Trainer rb(tb, o);
  rb.resume_from(dir.string());
  for (double l : rb.run().losses) got.push_back(l);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(got[i], want[i]) << "step " << i + 1;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pf
