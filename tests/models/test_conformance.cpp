// One conformance suite over tiny configs of every architecture, hybrids included: what the
// shared block stack promises each of them. Adding an architecture adds one row to kCases.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "autograd/ops.h"
#include "base/rng.h"
#include "io/checkpoint.h"
#include "models/core/decoder_lm.h"
#include "models/lm.h"
#include "models/model_test_util.h"
#include "train/adamw.h"

namespace pf {
namespace {

using nlohmann::json;

struct Case {
  std::string name;
  json config;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

json tiny_mamba(int version) {
  json j = {{"model_type", version == 2 ? "mamba2" : "mamba"},
            {"hidden_size", 32},
            {"num_hidden_layers", 2},
            {"vocab_size", 64},
            {"state_size", version == 2 ? 16 : 8},
            {"tie_word_embeddings", true}};
  if (version == 2) j.update(json{{"head_dim", 16}, {"chunk_size", 8}});
  return j;
}

json tiny_retnet(bool fla, bool separate_mlp) {
  json j = {{"model_type", "retnet"},
            {"hidden_size", 32},
            {"num_hidden_layers", 2},
            {"num_heads", 4},
            {"vocab_size", 64},
            {"intermediate_size", 48},
            {"retention_chunk", 8},
            {"norm_eps", 1e-5},
            {"head_norm_eps", 1e-5},
            {"tie_word_embeddings", !fla},
            {"mlp_layout", separate_mlp ? "separate" : "fused"}};
  j["retention_variant"] = fla ? "fla" : "torchscale";
  if (!fla) j["retention_decay"] = "paper";
  return j;
}

json tiny_hybrid(const std::string& pattern, int64_t ffn) {
  return {{"model_type", "postformer_hybrid"},
          {"pattern", pattern},
          {"hidden_size", 32},
          {"vocab_size", 64},
          {"intermediate_size", ffn},
          {"num_attention_heads", 4},
          {"num_key_value_heads", 2},
          {"max_position_embeddings", 256},
          {"mamba", {{"d_state", 8}}},
          {"mamba2", {{"d_state", 16}, {"headdim", 16}, {"chunk_size", 8}}},
          {"retention", {{"num_heads", 4}, {"chunk", 8}}}};
}

// state-spaces MambaLMHeadModel with mamba_ssm MHA layers (conv, partial rotary) and MLPs.
json tiny_mamba2attn() {
  return {{"d_model", 32},
          {"n_layer", 3},
          {"vocab_size", 61},
          {"pad_vocab_size_multiple", 8},
          {"d_intermediate", 40},
          {"ssm_cfg", {{"layer", "Mamba2"}, {"d_state", 16}, {"headdim", 16}, {"chunk_size", 8}}},
          {"attn_layer_idx", {1}},
          {"attn_cfg",
           {{"causal", true},
            {"d_conv", 4},
            {"head_dim", 8},
            {"num_heads", 4},
            {"num_heads_kv", 2},
            {"out_proj_bias", false},
            {"qkv_proj_bias", false},
            {"rotary_emb_dim", 4}}},
          {"tie_embeddings", true}};
}

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {"transformer", test::tiny_llama_config(2)},
      {"mamba", tiny_mamba(1)},
      {"mamba2", tiny_mamba(2)},
      {"retnet", tiny_retnet(false, false)},
      {"retnet_fla_separate_mlp", tiny_retnet(true, true)},
      {"hybrid_jamba", tiny_hybrid("MMAM", 48)},
      {"hybrid_every_mixer", tiny_hybrid("SARM", 0)},
      {"hybrid_mamba2attn", tiny_mamba2attn()},
  };
  return c;
}

std::vector<int32_t> tokens(int64_t n, int64_t vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> t(n);
  for (auto& v : t) v = static_cast<int32_t>(rng.below(vocab));
  return t;
}

float max_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  float m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::fabs(a.data()[i] - b.data()[i]));
  return m;
}

Tensor row(const Tensor& t, int64_t r) { return t.slice(0, r, r + 1).contiguous(); }

class Conformance : public ::testing::TestWithParam<Case> {
 protected:
  std::unique_ptr<LanguageModel> model() { return create_model(GetParam().config, 7); }
};

TEST_P(Conformance, PrefillThenStepsEqualsTheFullForward) {
  auto m = model();
  const int64_t T = 21, split = 13;
  const auto ids = tokens(T, 61, 1);
  Tensor full;
  {
    NoGradScope ng;
    full = m->forward(ids, 1, T, ForwardOptions{}).value();  // (T, V)
  }
  auto s = m->new_session(64);
  Tensor pre = s->forward(ids.data(), split, true);  // (split, V)
  EXPECT_LT(max_diff(pre, full.slice(0, 0, split).contiguous()), 1e-4f);
  for (int64_t t = split; t < T; ++t) {
    Tensor step = s->forward(&ids[t], 1, false);  // (1, V)
    EXPECT_LT(max_diff(step, row(full, t)), 1e-4f) << "token " << t;
  }
  EXPECT_EQ(s->position(), T);
}

// Sequences at different positions, decode rows and prompt chunks mixed in one call, give
// what each gives alone.
TEST_P(Conformance, ManySequencesBatchedEqualEachAlone) {
  auto m = model();
  auto* lm = dynamic_cast<DecoderLM*>(m.get());
  ASSERT_NE(lm, nullptr);
  const int64_t N = 4;
  const std::vector<int64_t> prompt_len = {5, 1, 9, 3};
  std::vector<std::vector<int32_t>> seqs;
  for (int64_t i = 0; i < N; ++i) seqs.push_back(tokens(20, 61, 10 + i));
  // Alone: one session each, prompt then 6 single steps; logits after every call.
  std::vector<std::vector<Tensor>> alone(N);
  for (int64_t i = 0; i < N; ++i) {
    auto s = m->new_session(64);
    alone[i].push_back(s->forward(seqs[i].data(), prompt_len[i], false).clone());
    for (int64_t k = 0; k < 6; ++k)
      alone[i].push_back(s->forward(&seqs[i][prompt_len[i] + k], 1, false).clone());
  }
  // Batched: slots in scrambled order; prompts of slots 0 and 2 go in a first call beside
  // nothing else; then a mixed call (decodes of 0 and 2 around the prompts of 1 and 3);
  // then all four decode together.
  auto pool = lm->new_pool(N + 1, 64);
  const int64_t slot[N] = {3, 0, 4, 1};
  std::vector<std::vector<Tensor>> got(N);
  auto run = [&](const std::vector<std::pair<int64_t, int64_t>>& parts) {  // (seq, len)
    SeqBatch b;
    std::vector<int32_t> ids;
    for (auto [i, len] : parts) {
      const int64_t pos = pool->position(slot[i]);
      b.add(slot[i], pos, len);
      ids.insert(ids.end(), seqs[i].begin() + pos, seqs[i].begin() + pos + len);
    }
    Tensor logits = lm->forward_cached(ids.data(), b, *pool);  // (runs, V)
    for (size_t r = 0; r < parts.size(); ++r) got[parts[r].first].push_back(row(logits, r));
  };
  run({{0, prompt_len[0]}, {2, prompt_len[2]}});
  run({{0, 1}, {1, prompt_len[1]}, {2, 1}, {3, prompt_len[3]}});
  for (int k = 0; k < 5; ++k) run({{3, 1}, {0, 1}, {1, 1}, {2, 1}});
  for (int64_t i = 0; i < N; ++i) {
    ASSERT_GE(got[i].size(), 6u);
    for (size_t k = 0; k < 6; ++k)
      EXPECT_LT(max_diff(got[i][k], alone[i][k]), 1e-5f) << "sequence " << i << " call " << k;
  }
}

TEST_P(Conformance, SavedStateContinuesBitExactly) {
  auto m = model();
  const auto ids = tokens(30, 61, 3);
  auto a = m->new_session(64);
  a->forward(ids.data(), 17, false);
  auto b = m->new_session(64);
  std::vector<std::pair<std::string, Tensor>> saved;
  for (auto& [n, t] : a->export_state()) saved.emplace_back(n, t.clone());
  b->import_state(saved, a->position());
  for (int64_t t = 17; t < 30; ++t) {
    Tensor x = a->forward(&ids[t], 1, false), y = b->forward(&ids[t], 1, false);
    ASSERT_EQ(std::memcmp(x.data(), y.data(), x.numel() * sizeof(float)), 0) << "token " << t;
  }
}

TEST_P(Conformance, AForkedSlotContinuesLikeTheOriginal) {
  auto m = model();
  auto* lm = dynamic_cast<DecoderLM*>(m.get());
  const auto ids = tokens(12, 61, 4);
  auto pool = lm->new_pool(2, 64);
  const int64_t s0 = pool->acquire();
  lm->forward_cached(ids.data(), SeqBatch{{s0, 0, 8}}, *pool);
  const int64_t s1 = pool->acquire();
  pool->fork(s0, s1);
  for (int64_t t = 8; t < 12; ++t) {
    Tensor x = lm->forward_cached(&ids[t], SeqBatch{{s0, t, 1}}, *pool);
    Tensor y = lm->forward_cached(&ids[t], SeqBatch{{s1, t, 1}}, *pool);
    ASSERT_EQ(std::memcmp(x.data(), y.data(), x.numel() * sizeof(float)), 0);
  }
  pool->clear(s1);
  EXPECT_EQ(pool->position(s1), 0);
}

TEST_P(Conformance, RecurrentStateDoesNotGrowWithContext) {
  auto m = model();
  auto* lm = dynamic_cast<DecoderLM*>(m.get());
  auto pool = lm->new_pool(1, 256);
  const auto ids = tokens(120, 61, 5);
  lm->forward_cached(ids.data(), SeqBatch{{0, 0, 10}}, *pool);
  const int64_t at10 = pool->bytes(0);
  lm->forward_cached(ids.data() + 10, SeqBatch{{0, 10, 110}}, *pool);
  const int64_t at120 = pool->bytes(0);
  if (m->recurrent()) {
    EXPECT_EQ(at10, at120);
    EXPECT_EQ(m->state_bytes(10), m->state_bytes(100000));
  } else {
    EXPECT_GT(at120, at10);  // a KV cache grows with the tokens it holds
  }
  EXPECT_EQ(at120, m->state_bytes(120));
}

TEST_P(Conformance, CheckpointsRoundTripBitForBit) {
  auto m = model();
  test::TempDir dir;
  save_model(dir.str(), *m);
  auto back = load_model(dir.str());
  EXPECT_EQ(back->arch(), m->arch());
  EXPECT_EQ(back->config_json(), m->config_json());
  std::vector<Tensor> a, b;
  m->visit_params([&](const std::string&, Var& p, ParamKind) { a.push_back(p.value()); });
  back->visit_params([&](const std::string&, Var& p, ParamKind) { b.push_back(p.value()); });
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_EQ(std::memcmp(a[i].data(), b[i].data(), a[i].numel() * sizeof(float)), 0);
  EXPECT_EQ(m->num_params(), config_param_count(m->config_json()));
}

TEST_P(Conformance, AShortRunLearns) {
  auto m = model();
  // A repeating 8-token phrase: every architecture here can learn to continue it.
  std::vector<int32_t> in, tg;
  const int32_t phrase[8] = {3, 14, 15, 9, 26, 5, 35, 8};
  for (int b = 0; b < 2; ++b)
    for (int t = 0; t < 32; ++t) {
      in.push_back(phrase[(t + b) % 8]);
      tg.push_back(phrase[(t + b + 1) % 8]);
    }
  std::vector<std::pair<std::string, Var>> params;
  std::vector<ParamKind> kinds;
  m->visit_params([&](const std::string& n, Var& p, ParamKind k) {
    params.emplace_back(n, p);
    kinds.push_back(k);
  });
  AdamW opt(AdamWConfig{}, params, kinds);
  double first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    for (auto& [n, p] : params) p.zero_grad();
    Tape tape;
    double loss;
    {
      TapeScope scope(tape);
      Var l = cross_entropy(m->forward(in, 2, 32, ForwardOptions{}), tg);
      loss = l.value().data()[0];
      tape.backward(l);
    }
    opt.step(3e-3);
    if (step == 0) first = loss;
    last = loss;
  }
  EXPECT_LT(last, 0.5 * first) << "loss " << first << " -> " << last;
}

INSTANTIATE_TEST_SUITE_P(Archs, Conformance, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace pf
