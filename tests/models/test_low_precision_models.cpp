// bf16 and int8 weights on trained small models of every architecture: per-token log-probs
// close to f32 (prefill and decode), and quantised directories that round-trip exactly and
// refuse bad scale tensors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>

#include "base/error.h"
#include "data/corpus.h"
#include "data/tokenizer.h"
#include "io/checkpoint.h"
#include "io/config_json.h"
#include "io/read_file.h"
#include "io/safetensors.h"
#include "models/compact_weights.h"
#include "models/lm.h"
#include "models/model_test_util.h"
#include "train/trainer.h"

namespace pf {
namespace {

using nlohmann::json;

struct Arch {
  std::string name;
  json config;
};
void PrintTo(const Arch& a, std::ostream* os) { *os << a.name; }

json base(const std::string& type) {
  return {{"model_type", type},
          {"hidden_size", 64},
          {"num_hidden_layers", 2},
          {"vocab_size", 256},
          {"tie_word_embeddings", true}};
}

std::vector<Arch> archs() {
  json tf = base("llama");
  tf.update(json{{"intermediate_size", 160},
                 {"num_attention_heads", 4},
                 {"num_key_value_heads", 2},
                 {"max_position_embeddings", 512}});
  json m1 = base("mamba");
  m1["state_size"] = 8;
  json m2 = base("mamba2");
  m2.update(json{{"state_size", 16}, {"head_dim", 16}, {"chunk_size", 32}});
  json rn = base("retnet");
  rn.update(json{{"num_heads", 2},
                 {"intermediate_size", 128},
                 {"retention_variant", "torchscale"},
                 {"retention_chunk", 32}});
  json hy = {{"model_type", "postformer_hybrid"},
             {"pattern", "MAS"},
             {"hidden_size", 64},
             {"vocab_size", 256},
             {"intermediate_size", 96},
             {"num_attention_heads", 4},
             {"num_key_value_heads", 2},
             {"max_position_embeddings", 512},
             {"mamba", {{"d_state", 8}}},
             {"mamba2", {{"d_state", 16}, {"headdim", 16}, {"chunk_size", 32}}}};
  json ar = tf;
  ar.erase("max_position_embeddings");
  ar.update(json{{"model_type", "perceiver_ar"}, {"context_length", 128}, {"num_latents", 64}});
  return {{"transformer", tf}, {"mamba", m1},  {"mamba2", m2},
          {"retnet", rn},      {"hybrid", hy}, {"perceiver_ar", ar}};
}

// One tiny model per architecture, trained 60 steps on a slice of the default corpus (so its
// weights have the spread of trained ones, not of an initialisation), shared by the tests.
struct Trained {
  std::unique_ptr<LanguageModel> model;
  std::vector<int32_t> held_out;  // 160 bytes of text the model did not train on
};

Trained& trained(const Arch& a) {
  static std::map<std::string, Trained> cache;
  auto it = cache.find(a.name);
  if (it != cache.end()) return it->second;
  ByteTokenizer tok;
  const std::string text = read_text_file(test::default_corpus()).substr(0, 300000);
  Corpus corpus(tok.encode(text), static_cast<int64_t>(text.size()), 0.1);
  Trained t;
  t.model = create_model(a.config, 3);
  TrainOptions o;
  o.batch = 8, o.seq = 128, o.steps = 60, o.warmup = 10, o.lr = 3e-3;
  o.eval_every = 0, o.eval_batches = 1, o.quiet = true, o.seed = 2;
  Trainer(*t.model, corpus, o).run();
  t.held_out = tok.encode(text.substr(text.size() - 2000, 160));
  return cache.emplace(a.name, std::move(t)).first->second;
}

// log p(token t+1 | tokens <= t) for every position, from a session: the first n - decode
// positions by one prefill (the matrix-matrix kernels), the rest one token at a time (the
// matrix-vector kernels).
std::vector<double> log_probs(LanguageModel& m, const std::vector<int32_t>& ids, int64_t decode) {
  const int64_t n = static_cast<int64_t>(ids.size()) - 1, pre = n - decode;
  auto s = m.new_session(static_cast<int64_t>(ids.size()));
  std::vector<Tensor> rows;
  Tensor all = s->forward(ids.data(), pre, true);  // (pre, V)
  for (int64_t t = 0; t < pre; ++t) rows.push_back(all.slice(0, t, t + 1).contiguous());
  for (int64_t t = pre; t < n; ++t) rows.push_back(s->forward(&ids[t], 1, false).clone());
  std::vector<double> lp;
  for (int64_t t = 0; t < n; ++t) {
    const float* z = rows[t].data();
    const int64_t V = rows[t].numel();
    double mx = z[0], sum = 0;
    for (int64_t v = 1; v < V; ++v) mx = std::max(mx, static_cast<double>(z[v]));
    for (int64_t v = 0; v < V; ++v) sum += std::exp(z[v] - mx);
    lp.push_back(z[ids[t + 1]] - mx - std::log(sum));
  }
  return lp;
}

// Every parameter, in visit order, as (name, var).
std::vector<std::pair<std::string, Var>> params_of(Model& m) {
  std::vector<std::pair<std::string, Var>> out;
  m.visit_params([&](const std::string& n, Var& v, ParamKind) { out.emplace_back(n, v); });
  return out;
}

// A model with `src`'s trained f32 weights, built fresh so converting it leaves `src` f32.
std::unique_ptr<LanguageModel> copy_of(LanguageModel& src, const json& config) {
  auto m = create_model(config, 3);
  auto from = params_of(src), to = params_of(*m);
  for (size_t i = 0; i < from.size(); ++i) to[i].second.value().copy_from(from[i].second.value());
  return m;
}

class LowPrecisionModels : public ::testing::TestWithParam<Arch> {};

// Bounds in nats per token. bf16 keeps 8 mantissa bits (relative error 2^-9 per weight),
// int8 about 7 bits per group of 32. Measured over the six architectures (AMD EPYC Zen 4,
// 2026-12-04): mean 0.0005-0.0011 (bf16) and 0.0014-0.0029 (int8), worst token 0.006
// (bf16) and 0.020 (int8, mamba); the bounds leave 4-5x for other CPUs' rounding.
constexpr double kMeanBound[] = {0, 0.005, 0.012};  // indexed by WeightFormat
constexpr double kMaxBound[] = {0, 0.03, 0.08};

TEST_P(LowPrecisionModels, LogProbsStayCloseToF32InPrefillAndDecode) {
  Trained& t = trained(GetParam());
  const std::vector<double> want = log_probs(*t.model, t.held_out, 16);
  double mean_f32 = 0;
  for (double v : want) mean_f32 += v / want.size();
  EXPECT_GT(mean_f32, -3.5) << "the model did not learn: " << mean_f32 << " nats per byte";
  for (WeightFormat f : {WeightFormat::BF16, WeightFormat::Int8}) {
    auto m = copy_of(*t.model, GetParam().config);
    ASSERT_GT(convert_weights(*m, f), 0);
    EXPECT_EQ(model_weight_format(*m), f);
    EXPECT_LT(model_weight_bytes(*m), model_weight_bytes(*t.model) * (f == WeightFormat::BF16 ? 0.6 : 0.4));
    const std::vector<double> got = log_probs(*m, t.held_out, 16);
    double mean = 0, worst = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      const double d = std::fabs(got[i] - want[i]);
      mean += d / want.size();
      worst = std::max(worst, d);
    }
    std::printf("%s %s: |log p - log p(f32)| mean %.5f max %.5f nats\n", GetParam().name.c_str(),
                weight_format_name(f), mean, worst);
    EXPECT_LT(mean, kMeanBound[static_cast<int>(f)]) << weight_format_name(f);
    EXPECT_LT(worst, kMaxBound[static_cast<int>(f)]) << weight_format_name(f);
    // Converting back to f32 gives the widened compact values: the same log-probs where the
    // kernels multiply f32 activations (prefill). Decoding int8 quantises the activations
    // too (kernels/cpu/q8_dot.h), which moves log-probs by up to ~0.005 nats here.
    convert_weights(*m, WeightFormat::F32);
    EXPECT_EQ(model_weight_format(*m), WeightFormat::F32);
    const std::vector<double> widened = log_probs(*m, t.held_out, 16);
    for (size_t i = 0; i < got.size(); ++i) {
      const bool decoded = i + 16 >= got.size();
      EXPECT_NEAR(widened[i], got[i], decoded && f == WeightFormat::Int8 ? 0.02 : 1e-4) << i;
    }
  }
}

// save_model of a quantised model writes the compact values and scales; loading the
// directory (no flag) gives the same bytes and the same logits.
TEST_P(LowPrecisionModels, QuantisedDirectoryRoundTripsBitExactly) {
  Trained& t = trained(GetParam());
  for (WeightFormat f : {WeightFormat::BF16, WeightFormat::Int8}) {
    auto m = copy_of(*t.model, GetParam().config);
    convert_weights(*m, f);
    test::TempDir dir;
    save_model(dir.str(), *m);
    const json cfg = read_json_file(dir / "config.json");
    ASSERT_TRUE(cfg.contains("quantization")) << cfg.dump();
    EXPECT_EQ(cfg["quantization"]["weights"], weight_format_name(f));
    auto back = load_model(dir.str());
    EXPECT_EQ(model_weight_format(*back), f);
    auto pa = params_of(*m), pb = params_of(*back);
    ASSERT_EQ(pa.size(), pb.size());
    for (size_t i = 0; i < pa.size(); ++i) {
      const Tensor& a = pa[i].second.value();
      const Tensor& b = pb[i].second.value();
      ASSERT_EQ(a.dtype(), b.dtype()) << pa[i].first;
      ASSERT_EQ(a.nbytes(), b.nbytes()) << pa[i].first;
      EXPECT_EQ(0, std::memcmp(a.raw(), b.raw(), a.numel() * dtype_size(a.dtype())))
          << pa[i].first;
      if (a.dtype() == DType::Q8) {
        ASSERT_EQ(a.group(), b.group());
        EXPECT_EQ(0, std::memcmp(a.q8_scales(), b.q8_scales(),
                                 a.numel() / a.group() * sizeof(float)))
            << pa[i].first;
      }
    }
    EXPECT_EQ(log_probs(*m, t.held_out, 4), log_probs(*back, t.held_out, 4));
  }
}

INSTANTIATE_TEST_SUITE_P(Archs, LowPrecisionModels, ::testing::ValuesIn(archs()),
                         [](const auto& info) { return info.param.name; });

// A quantised directory with one tensor altered: each fault is an error naming the tensor.
TEST(LowPrecisionFiles, BadScalesAndValuesAreRefused) {
  auto m = create_model(test::tiny_llama_config(), 1);
  convert_weights(*m, WeightFormat::Int8);
  test::TempDir dir;
  save_model(dir.str(), *m);
  SafetensorsFile f(dir / "model.safetensors");
  std::string victim;
  for (const std::string& n : f.names())
    if (f.info(n).dtype == DType::I8 && victim.empty()) victim = n;
  ASSERT_FALSE(victim.empty());
  const std::string scale = victim + kScaleSuffix;
  ASSERT_TRUE(f.has(scale));

  // Rewrites the weights with `edit` applied to the (name, tensor) list.
  auto rewrite = [&](const std::string& out,
                     const std::function<void(std::vector<std::pair<std::string, Tensor>>&)>& edit) {
    std::filesystem::create_directories(out);
    std::filesystem::copy_file(dir / "config.json", out + "/config.json");
    std::vector<std::pair<std::string, Tensor>> ts;
    for (const std::string& n : f.names()) ts.emplace_back(n, f.load_raw(n).clone());
    edit(ts);
    write_safetensors(out + "/model.safetensors", ts, f.metadata());
  };
  auto expect_error = [&](const std::string& d, const std::string& words) {
    try {
      load_model(d);
      ADD_FAILURE() << d << ": expected an error with '" << words << "'";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(words), std::string::npos) << msg;
      EXPECT_NE(msg.find(victim), std::string::npos) << msg;
    }
  };
  rewrite(dir / "no_scale", [&](auto& ts) {
    std::erase_if(ts, [&](const auto& p) { return p.first == scale; });
  });
  expect_error(dir / "no_scale", "scale");
  rewrite(dir / "bad_group", [&](auto& ts) {
    for (auto& [n, t] : ts)
      if (n == scale) t = Tensor::zeros({t.size(0) + 1, t.size(1)});  // one row too many
  });
  expect_error(dir / "bad_group", "scale");
  for (float bad : {-1.0f, std::nanf("")}) {
    const std::string d = dir / (std::isnan(bad) ? "nan_scale" : "negative_scale");
    rewrite(d, [&](auto& ts) {
      for (auto& [n, t] : ts)
        if (n == scale) t.data()[1] = bad;
    });
    expect_error(d, "scale");
  }
  // An f32 matrix where config.json says int8 is an error too, not a silent mix.
  rewrite(dir / "f32_values", [&](auto& ts) {
    for (auto& [n, t] : ts)
      if (n == victim) t = Tensor::zeros(t.shape());
  });
  expect_error(dir / "f32_values", "config.json says the weights are int8");
}

}  // namespace
}  // namespace pf
