// Compact weights: bf16 and int8 conversion, and the typed matrix products and row lookups
// against scalar references over the same compact values.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/rng.h"
#include "kernels/cpu/q8_dot.h"
#include "kernels/cpu/typed_linear.h"
#include "tensor/dtype_convert.h"
#include "tensor/quantize.h"

namespace pf {
namespace {

Tensor random_matrix(int64_t rows, int64_t cols, uint64_t seed, float scale = 1.0f) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(rows * cols));
  for (auto& x : v) x = scale * static_cast<float>(rng.normal());
  return Tensor::from({rows, cols}, v);
}

TEST(LowPrecision, Bf16RoundsToNearestEven) {
  // 1 + 2^-8 lies halfway between bf16 1 and 1 + 2^-7: even mantissa (1) wins.
  Tensor x = Tensor::from({4}, {1.0f + 1.0f / 256, 1.0f + 3.0f / 256, -2.5f, 1e-3f});
  std::vector<float> b = to_bf16(x).to_vector();
  EXPECT_EQ(b[0], 1.0f);
  EXPECT_EQ(b[1], 1.0f + 4.0f / 256);
  EXPECT_EQ(b[2], -2.5f);
  EXPECT_NEAR(b[3], 1e-3f, 1e-3f / 128);
  EXPECT_EQ(to_bf16(x).nbytes(), 4 * 2);
}

TEST(LowPrecision, Int8GroupsHoldScaleAndValuesWithinHalfAStep) {
  Tensor w = random_matrix(5, 64, 1);
  Tensor q = quantize_q8(w, 32);
  ASSERT_EQ(q.dtype(), DType::Q8);
  EXPECT_EQ(q.group(), 32);
  const std::vector<float> back = q.to_vector();
  const float* src = w.data();
  const float* scales = q.q8_scales();
  const auto* vals = static_cast<const int8_t*>(q.raw());
  for (int64_t g = 0; g < 10; ++g) {
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(src[g * 32 + i]));
    EXPECT_FLOAT_EQ(scales[g], amax / 127.0f);
    for (int i = 0; i < 32; ++i) {
      const int64_t k = g * 32 + i;
      EXPECT_LE(std::abs(vals[k]), 127);
      EXPECT_FLOAT_EQ(back[k], vals[k] * scales[g]);
      EXPECT_LE(std::fabs(back[k] - src[k]), 0.5f * scales[g] * 1.0001f);
    }
  }
  // An all-zero group gets scale 0 and values 0 (no division by zero).
  Tensor z = quantize_q8(Tensor::zeros({1, 32}), 32);
  EXPECT_EQ(z.q8_scales()[0], 0.0f);
  for (float v : z.to_vector()) EXPECT_EQ(v, 0.0f);
  // 40 inputs: 32 does not divide, so the whole row is one group.
  EXPECT_EQ(q8_group_for(40), 40);
  EXPECT_EQ(convert_weight(random_matrix(3, 40, 2), WeightFormat::Int8).group(), 40);
  EXPECT_EQ(convert_weight(random_matrix(3, 96, 2), WeightFormat::Int8).group(), 32);
}

TEST(LowPrecision, FormatNamesParseAndBadOnesAreErrors) {
  for (WeightFormat f : {WeightFormat::F32, WeightFormat::BF16, WeightFormat::Int8})
    EXPECT_EQ(parse_weight_format(weight_format_name(f)), f);
  try {
    parse_weight_format("fp8");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fp8"), std::string::npos) << e.what();
  }
}

struct LinearCase {
  int64_t M, N, K;
  WeightFormat f;
};

class TypedLinear : public ::testing::TestWithParam<LinearCase> {};

// The kernel against a double-precision loop over the same compact weights: the only
// difference is f32 summation order, so the bound is relative to sum |x||w|. Decode-sized
// int8 products with groups of 32 quantise the activations too (q8_dot.h): the reference
// then uses the same quantised activations, and they must stay within their rounding of x.
TEST_P(TypedLinear, MatchesScalarReference) {
  const LinearCase c = GetParam();
  Tensor w = convert_weight(random_matrix(c.N, c.K, 3, 0.1f), c.f);
  Tensor x = random_matrix(c.M, c.K, 4);
  Tensor y0 = random_matrix(c.M, c.N, 5);
  Tensor xr = x.clone();  // the activations the kernel multiplies
  if (c.f == WeightFormat::Int8 && c.M <= 8 && w.group() == 32 && cpu::q8_int_dot_available()) {
    std::vector<int8_t> q(static_cast<size_t>(c.K));
    std::vector<float> s(static_cast<size_t>(c.K / 32));
    for (int64_t m = 0; m < c.M; ++m) {
      const float* xm = x.data() + m * c.K;
      cpu::quantize_activations_q8(xm, c.K, q.data(), s.data());
      for (int64_t k = 0; k < c.K; ++k) {
        const float v = s[k / 32] * q[k];
        float amax = 0;
        for (int64_t i = k / 32 * 32; i < k / 32 * 32 + 32; ++i) amax = std::max(amax, std::fabs(xm[i]));
        EXPECT_LE(std::fabs(v - xm[k]), amax / 254 * 1.0001f) << "activation " << k;
        xr.data()[m * c.K + k] = v;
      }
    }
  }
  std::vector<float> want(static_cast<size_t>(c.M * c.N));
  cpu::linear_fwd_reference(c.M, c.N, c.K, xr.data(), w, want.data());
  const std::vector<float> wv = w.to_vector();
  for (float beta : {0.0f, 1.0f}) {
    Tensor y = y0.clone();
    cpu::linear_fwd(c.M, c.N, c.K, x.data(), w, beta, y.data());
    for (int64_t m = 0; m < c.M; ++m) {
      for (int64_t n = 0; n < c.N; ++n) {
        double mag = 0;
        for (int64_t k = 0; k < c.K; ++k)
          mag += std::fabs(x.data()[m * c.K + k] * wv[static_cast<size_t>(n * c.K + k)]);
        const float expect = want[static_cast<size_t>(m * c.N + n)] +
                             (beta == 0.0f ? 0.0f : y0.data()[m * c.N + n]);
        EXPECT_NEAR(y.data()[m * c.N + n], expect, 1e-5 * mag + 1e-6)
            << "m " << m << " n " << n << " beta " << beta;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, TypedLinear,
    ::testing::Values(
        // GEMV path (M <= 8): one to eight rows, K with and without 16/32 tails.
        LinearCase{1, 37, 64, WeightFormat::BF16}, LinearCase{1, 37, 64, WeightFormat::Int8},
        LinearCase{2, 19, 96, WeightFormat::Int8}, LinearCase{3, 21, 53, WeightFormat::BF16},
        LinearCase{3, 21, 53, WeightFormat::Int8},  // whole-row group of 53
        LinearCase{4, 8, 40, WeightFormat::Int8}, LinearCase{5, 17, 80, WeightFormat::BF16},
        LinearCase{7, 9, 160, WeightFormat::Int8}, LinearCase{8, 33, 48, WeightFormat::BF16},
        // Integer dot path: K = 32 (masked tail only), 224 (128-step + 64 + 32 tail), 1024.
        LinearCase{1, 70, 32, WeightFormat::Int8}, LinearCase{2, 65, 224, WeightFormat::Int8},
        LinearCase{1, 300, 1024, WeightFormat::Int8},
        // Widen-then-sgemm path (M > 8), several row blocks when N * K is large.
        LinearCase{9, 30, 64, WeightFormat::Int8}, LinearCase{33, 70, 53, WeightFormat::BF16},
        LinearCase{20, 5000, 160, WeightFormat::Int8},
        LinearCase{12, 4100, 256, WeightFormat::BF16},
        LinearCase{3, 11, 64, WeightFormat::F32}, LinearCase{17, 11, 64, WeightFormat::F32}),
    [](const auto& info) {
      const LinearCase& c = info.param;
      return std::string(weight_format_name(c.f)) + "_M" + std::to_string(c.M) + "_N" +
             std::to_string(c.N) + "_K" + std::to_string(c.K);
    });

TEST(LowPrecision, EmbeddingRowsAreTheWidenedCompactRows) {
  for (WeightFormat f : {WeightFormat::BF16, WeightFormat::Int8}) {
    Tensor w = convert_weight(random_matrix(50, 64, 6), f);
    const std::vector<float> wv = w.to_vector();
    const std::vector<int32_t> ids = {3, 0, 49, 3};
    std::vector<float> out(ids.size() * 64);
    cpu::embedding_fwd(static_cast<int64_t>(ids.size()), ids.data(), w, out.data());
    for (size_t i = 0; i < ids.size(); ++i)
      EXPECT_EQ(0, std::memcmp(&out[i * 64], &wv[static_cast<size_t>(ids[i]) * 64], 64 * 4))
          << weight_format_name(f) << " row " << i;
    std::vector<float> rows(2 * 64);
    cpu::widen_rows(w, 48, 50, rows.data());
    EXPECT_EQ(0, std::memcmp(rows.data(), &wv[48 * 64], rows.size() * 4));
  }
}

TEST(LowPrecision, CompactTensorsCopyAndSliceByRows) {
  Tensor q = convert_weight(random_matrix(6, 64, 7), WeightFormat::Int8);
  Tensor c = q.clone();
  EXPECT_EQ(c.dtype(), DType::Q8);
  EXPECT_EQ(c.to_vector(), q.to_vector());
  Tensor rows = q.slice(0, 2, 5);
  const std::vector<float> all = q.to_vector(), part = rows.to_vector();
  ASSERT_EQ(part.size(), 3u * 64);
  EXPECT_TRUE(std::equal(part.begin(), part.end(), all.begin() + 2 * 64));
  // f32 accessors refuse a compact tensor rather than reading its bytes as floats.
  EXPECT_THROW(q.data(), Error);
}

}  // namespace
}  // namespace pf
