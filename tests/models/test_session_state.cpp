// Saving an inference session and loading it into a fresh one continues with exactly
// the logits an uninterrupted session gives, for every architecture.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/rng.h"
#include "infer/state_file.h"
#include "io/safetensors.h"
#include "models/lm.h"
#include "models/model_test_util.h"

namespace pf {
namespace {

class SessionState : public ::testing::TestWithParam<nlohmann::json> {};

TEST_P(SessionState, SaveThenLoadContinuesBitExactly) {
  auto model = create_model(GetParam(), 4);
  Rng rng(5);
  std::vector<int32_t> toks(24);
  for (auto& t : toks) t = static_cast<int32_t>(rng.below(200));
  test::TempDir dir;
  const std::string path = dir / "state.safetensors";

  auto a = model->new_session(64);
  a->forward(toks.data(), 10, false);
  save_session_state(path, *model, *a);
  std::vector<Tensor> want;
  want.push_back(a->last_logits().clone());
  for (int i = 10; i < 24; ++i) want.push_back(a->forward(&toks[i], 1, false).clone());

  auto b = model->new_session(64);
  load_session_state(path, *model, *b);
  EXPECT_EQ(b->position(), 10);
  std::vector<Tensor> got;
  got.push_back(b->last_logits().clone());
  for (int i = 10; i < 24; ++i) got.push_back(b->forward(&toks[i], 1, false).clone());
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(want[i].shape(), got[i].shape());
    EXPECT_EQ(0, std::memcmp(want[i].data(), got[i].data(), want[i].numel() * sizeof(float)))
        << "step " << i;
  }
}

TEST_P(SessionState, RejectsStateOfAnotherModel) {
  auto model = create_model(GetParam(), 4);
  nlohmann::json other_cfg = GetParam();
  other_cfg["num_hidden_layers"] = other_cfg.value("num_hidden_layers", 2) + 1;
  if (other_cfg.contains("n_layer")) other_cfg["n_layer"] = other_cfg["n_layer"].get<int>() + 1;
  auto other = create_model(other_cfg, 4);
  test::TempDir dir;
  std::vector<int32_t> toks = {1, 2, 3};
  auto s = other->new_session(16);
  s->forward(toks.data(), 3, false);
  save_session_state(dir / "s", *other, *s);
  auto mine = model->new_session(16);
  try {
    load_session_state(dir / "s", *model, *mine);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("different config"), std::string::npos) << e.what();
  }
  write_safetensors(dir / "w", {{"x", Tensor::zeros({2})}});
  EXPECT_THROW(load_session_state(dir / "w", *model, *mine), Error);
  EXPECT_THROW(load_session_state(dir / "missing", *model, *mine), Error);
}

TEST_P(SessionState, RejectsStateOfTheSameConfigWithOtherWeights) {
  auto model = create_model(GetParam(), 4);
  auto twin = create_model(GetParam(), 5);  // same config, other initialisation
  test::TempDir dir;
  std::vector<int32_t> toks = {1, 2, 3};
  auto s = twin->new_session(16);
  s->forward(toks.data(), 3, false);
  save_session_state(dir / "s", *twin, *s);
  auto mine = model->new_session(16);
  try {
    load_session_state(dir / "s", *model, *mine);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("other weights"), std::string::npos) << e.what();
  }
  // Its own model takes it; a state tensor with a NaN is then refused, naming it.
  auto again = twin->new_session(16);
  EXPECT_NO_THROW(load_session_state(dir / "s", *twin, *again));
  SafetensorsFile f(dir / "s");
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const std::string& name : f.names()) tensors.emplace_back(name, f.load_f32(name));
  tensors.back().second.data()[0] = std::nanf("");
  write_safetensors(dir / "nan", tensors, f.metadata());
  auto third = twin->new_session(16);
  try {
    load_session_state(dir / "nan", *twin, *third);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("holds nan"), std::string::npos) << e.what();
  }
}

nlohmann::json tiny_mamba_cfg(int version) {
  nlohmann::json j = {{"model_type", version == 2 ? "mamba2" : "mamba"},
                      {"hidden_size", 32},
                      {"num_hidden_layers", 2},
                      {"vocab_size", 256},
                      {"state_size", 8}};
  if (version == 2) j["head_dim"] = 16;
  return j;
}

INSTANTIATE_TEST_SUITE_P(Archs, SessionState,
                         ::testing::Values(test::tiny_llama_config(), tiny_mamba_cfg(1),
                                           tiny_mamba_cfg(2),
                                           nlohmann::json{{"model_type", "retnet"},
                                                          {"hidden_size", 32},
                                                          {"num_hidden_layers", 2},
                                                          {"num_heads", 2},
                                                          {"vocab_size", 256},
                                                          {"retention_variant", "torchscale"}}),
                         [](const auto& info) {
                           return info.param["model_type"].template get<std::string>();
                         });

}  // namespace
}  // namespace pf
