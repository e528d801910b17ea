// The synthetic tasks generate what ../shared/SPEC.md describes, deterministically.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "base/error.h"
#include "tasks/synthetic_task.h"

namespace pf {
namespace {

TEST(Tasks, SelectiveCopyScattersSortedDataThenAsksForItInOrder) {
  const auto task = make_task({"selective_copy"});
  const int64_t T = 96, M = 16;
  for (uint64_t step = 0; step < 20; ++step) {
    const Batch b = task->train_batch(1, T, 7, step);
    std::vector<int32_t> data;
    for (int64_t t = 0; t < T - M; ++t) {
      EXPECT_NE(b.inputs[t], 1) << "a marker inside the body";
      EXPECT_LT(b.inputs[t], 16);
      if (b.inputs[t] != 0) data.push_back(b.inputs[t]);
      EXPECT_EQ(b.targets[t], -1);
    }
    ASSERT_EQ(static_cast<int64_t>(data.size()), M);
    for (int64_t i = 0; i < M; ++i) {
      EXPECT_EQ(b.inputs[T - M + i], 1);
      EXPECT_EQ(b.targets[T - M + i], data[i]);
    }
  }
}

TEST(Tasks, InductionAsksForTheTokenAfterTheOnlyEarlierSpecialToken) {
  const auto task = make_task({"induction"});
  const int64_t T = 256;
  for (uint64_t step = 0; step < 20; ++step) {
    const Batch b = task->train_batch(1, T, 3, step);
    std::vector<int64_t> specials;
    for (int64_t t = 0; t < T; ++t)
      if (b.inputs[t] == 0) specials.push_back(t);
    ASSERT_EQ(specials.size(), 2u);
    EXPECT_LT(specials[0], T / 2);
    EXPECT_EQ(specials[1], T - 1);
    for (int64_t t = 0; t < T - 1; ++t) EXPECT_EQ(b.targets[t], -1);
    EXPECT_EQ(b.targets[T - 1], b.inputs[specials[0] + 1]);
  }
}

TEST(Tasks, MqarQueriesEveryKeyOnceAndAnswersWithItsValue) {
  TaskOptions o{"mqar"};
  o.vocab = 512;
  o.pairs = {8};
  const auto task = make_task(o);
  const int64_t T = 128, k = 8, V = 512;
  int64_t near = 0, total = 0;
  for (uint64_t step = 0; step < 50; ++step) {
    const Batch b = task->train_batch(1, T, 11, step);
    std::set<int32_t> keys, vals;
    std::vector<std::pair<int32_t, int32_t>> kv;
    for (int64_t i = 0; i < k; ++i) {
      const int32_t key = b.inputs[2 * i], val = b.inputs[2 * i + 1];
      EXPECT_GE(key, 1);
      EXPECT_LT(key, V / 2);
      EXPECT_GE(val, V / 2);
      EXPECT_LT(val, V);
      keys.insert(key);
      vals.insert(val);
      kv.emplace_back(key, val);
      EXPECT_EQ(b.targets[2 * i], -1);
      EXPECT_EQ(b.targets[2 * i + 1], -1);
    }
    EXPECT_EQ(keys.size(), static_cast<size_t>(k));
    EXPECT_EQ(vals.size(), static_cast<size_t>(k));
    std::set<int32_t> asked;
    for (int64_t t = 2 * k; t < T; ++t) {
      if (b.targets[t] < 0) continue;
      EXPECT_EQ((t - 2 * k) % 2, 0) << "queries sit at even offsets";
      const auto it =
          std::find_if(kv.begin(), kv.end(), [&](const auto& p) { return p.first == b.inputs[t]; });
      ASSERT_NE(it, kv.end()) << "a query that is not a key";
      EXPECT_EQ(b.targets[t], it->second);
      asked.insert(b.inputs[t]);
      near += (t - 2 * k) / 2 < (T - 2 * k) / 8;
      ++total;
    }
    EXPECT_EQ(asked, keys);
  }
  // Power-law gaps with a = 0.01: most queries come soon after the pairs (uniform: 1/4).
  EXPECT_GT(static_cast<double>(near) / total, 0.4);
}

TEST(Tasks, BatchesArePureFunctionsOfSeedAndStepAndValidationIsItsOwn) {
  for (const std::string& name : task_names()) {
    TaskOptions o{name};
    if (name == "mqar") o.vocab = 256;
    const auto task = make_task(o);
    const Batch a = task->train_batch(4, 64, 5, 9), b = task->train_batch(4, 64, 5, 9);
    EXPECT_EQ(a.inputs, b.inputs) << name;
    EXPECT_EQ(a.targets, b.targets) << name;
    EXPECT_NE(a.inputs, task->train_batch(4, 64, 5, 10).inputs) << name;
    EXPECT_NE(a.inputs, task->val_batch(4, 64, 9).inputs) << name;
    EXPECT_EQ(task->val_batch(4, 64, 2).inputs, task->val_batch(4, 64, 2).inputs) << name;
    for (int32_t t : a.inputs) {
      EXPECT_GE(t, 0);
      EXPECT_LT(t, task->vocab_size());
    }
  }
}

TEST(Tasks, BadOptionsAreRefusedWithTheFlag) {
  EXPECT_THROW(make_task({"copying"}), Error);
  TaskOptions o{"mqar"};
  o.vocab = 64;
  o.pairs = {40};
  EXPECT_THROW(make_task(o), Error);  // 40 distinct keys need a vocabulary over 80
  o.pairs = {8};
  EXPECT_THROW(make_task(o)->check_fits(1, 16), Error);  // 8 pairs need 32 tokens
  EXPECT_THROW(make_task({"selective_copy"})->check_fits(1, 20), Error);
}

}  // namespace
}  // namespace pf
