// metrics.jsonl: one row per logged step, kept consistent with the checkpoint on resume,
// tolerant of a line torn by a crash, and removed with a run that never saved.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "data/corpus.h"
#include "data/tokenizer.h"
#include "io/run_dir.h"
#include "models/lm.h"
#include "models/model_test_util.h"
#include "train/metrics_log.h"
#include "train/trainer.h"

namespace pf {
namespace {

namespace fs = std::filesystem;

Corpus small_corpus() {
  std::string text;
  for (int i = 0; i < 400; ++i) text += "In the beginning God created the heaven and the earth. ";
  ByteTokenizer tok;
  return Corpus(tok.encode(text), static_cast<int64_t>(text.size()), 0.1);
}

TrainOptions small_options(const std::string& out) {
  TrainOptions o;
  o.batch = 2, o.seq = 16, o.steps = 6, o.warmup = 1, o.lr = 1e-3;
  o.eval_every = 3, o.eval_batches = 1, o.log_every = 2, o.quiet = true, o.out_dir = out;
  return o;
}

TEST(MetricsLog, OneRowPerLoggedStepWithEveryField) {
  test::TempDir tmp;
  const Corpus corpus = small_corpus();
  auto m = create_model(test::tiny_llama_config(), 1);
  Trainer tr(*m, corpus, small_options(tmp / "run"));
  tr.run();
  const auto rows = read_metrics(tmp / "run");
  // Logged at 2, 4, 6 and evaluated at 3 and 6.
  ASSERT_EQ(rows.size(), 4u);
  const int64_t want_steps[] = {2, 3, 4, 6};
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i]["step"].get<int64_t>(), want_steps[i]);
    EXPECT_EQ(rows[i]["tokens"].get<int64_t>(), want_steps[i] * 2 * 16);
    for (const char* k : {"loss", "train_bpb", "lr", "tokens_per_s", "peak_mem_mib", "seconds"}) {
      ASSERT_TRUE(rows[i][k].is_number()) << k;
      EXPECT_TRUE(std::isfinite(rows[i][k].get<double>())) << k;
    }
    EXPECT_GT(rows[i]["loss"].get<double>(), 0.0);
  }
  EXPECT_TRUE(rows[0]["val_bpb"].is_null());
  EXPECT_TRUE(rows[1]["val_bpb"].is_number());
  EXPECT_TRUE(rows[3]["val_bpb"].is_number());
  // The loss of a row is the mean of the steps since the previous row.
  EXPECT_NEAR(rows[0]["train_bpb"].get<double>(), rows[0]["loss"].get<double>() / std::log(2.0),
              1e-9);
}

TEST(MetricsLog, ResumeDropsRowsPastTheCheckpointAndTornLines) {
  test::TempDir tmp;
  const std::string out = tmp / "run";
  const Corpus corpus = small_corpus();
  {
    auto m = create_model(test::tiny_llama_config(), 1);
    TrainOptions o = small_options(out);
    o.stop_at_step = 4;  // checkpoint at 4
    Trainer tr(*m, corpus, o);
    tr.run();
  }
  // A crash after step 4's checkpoint: rows for steps 5 (whole) and 6 (torn) were written.
  {
    std::ofstream f(fs::path(out) / kMetricsFile, std::ios::app);
    f << "{\"step\":5,\"tokens\":160}\n{\"step\":6,\"tok";
  }
  EXPECT_EQ(read_metrics(out).back()["step"].get<int64_t>(), 5);  // the torn line is skipped
  auto m = create_model(test::tiny_llama_config(), 1);
  Trainer tr(*m, corpus, small_options(out));
  tr.resume_from(out);
  tr.run();
  std::vector<int64_t> steps;
  for (const auto& r : read_metrics(out)) steps.push_back(r["step"].get<int64_t>());
  EXPECT_EQ(steps, (std::vector<int64_t>{2, 3, 4, 6}));
}

TEST(MetricsLog, MalformedLinesAreNamed) {
  test::TempDir tmp;
  const std::string p = tmp / "metrics.jsonl";
  std::ofstream(p) << "{\"step\":1}\nnot json\n{\"step\":2}\n";
  try {
    read_metrics(p);
    FAIL() << "a malformed middle line was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
  }
  std::ofstream(p) << "{\"tokens\":1}\n";
  EXPECT_THROW(read_metrics(p), Error);  // no step
  EXPECT_THROW(read_metrics(tmp / "absent"), Error);
}

TEST(MetricsLog, ARunThatNeverSavedLeavesNothingBehind) {
  test::TempDir tmp;
  const std::string out = tmp / "run";
  const Corpus corpus = small_corpus();
  auto m = create_model(test::tiny_llama_config(), 1);
  {
    Trainer tr(*m, corpus, small_options(out));
    MetricsLog log(out, -1);  // what run() opens before its first step
    log.append({{"step", 1}});
  }  // destroyed before any save, as when a run fails early
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace pf
