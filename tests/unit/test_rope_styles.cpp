// RoPE in torchscale's "rotate every two" convention with linspace frequencies, and
// row scaling: forward against a double reference, backward against finite differences.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/ops.h"
#include "base/error.h"
#include "gradcheck.h"

using namespace pf;
using pf::test_util::gradcheck;
using pf::test_util::random_var;

namespace {

// torchscale: angle_i = theta^(-linspace(0, 1, hd/2)[i]); pairs (2i, 2i+1).
std::vector<double> ref_rope_interleaved(const Tensor& x, int64_t pos0, double theta) {
  const int64_t B = x.shape()[0], T = x.shape()[1], H = x.shape()[2], hd = x.shape()[3];
  const int64_t half = hd / 2;
  std::vector<double> out(x.numel());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < half; ++i) {
          const double e = half > 1 ? double(i) / (half - 1) : 0.0;
          const double a = double(pos0 + t) * std::pow(theta, -e);
          const double x1 = x.at({b, t, h, 2 * i}), x2 = x.at({b, t, h, 2 * i + 1});
          const int64_t base = ((b * T + t) * H + h) * hd;
          out[base + 2 * i] = x1 * std::cos(a) - x2 * std::sin(a);
          out[base + 2 * i + 1] = x2 * std::cos(a) + x1 * std::sin(a);
        }
  return out;
}

TEST(RopeStyles, InterleavedLinspaceMatchesReference) {
  Var x = random_var({2, 5, 3, 8}, 11);
  const cpu::RopeStyle st{10000.0f, true, true};
  const auto got = rope(x, 4, st).value().to_vector();
  const auto want = ref_rope_interleaved(x.value(), 4, 10000.0);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5) << i;
  // The interleaved convention really differs from rotate-half.
  const auto half = rope(x, 4, 10000.0f).value().to_vector();
  double diff = 0;
  for (size_t i = 0; i < got.size(); ++i)
    diff = std::max(diff, double(std::fabs(got[i] - half[i])));
  EXPECT_GT(diff, 1e-2);
}

TEST(RopeStyles, InterleavedBackward) {
  Var x = random_var({1, 4, 2, 6}, 12);
  const cpu::RopeStyle st{100.0f, true, true};
  EXPECT_TRUE(gradcheck({x}, [st](const std::vector<Var>& in) { return rope(in[0], 9, st); }));
}

TEST(ScaleRows, ForwardAndBackward) {
  Var x = random_var({3, 2, 4}, 13);
  Tensor f = Tensor::from({6}, {0.5f, 2.0f, -1.0f, 3.0f, 1.0f, 0.25f});
  const auto y = scale_rows(x, f).value().to_vector();
  const auto xv = x.value().to_vector();
  for (int64_t r = 0; r < 6; ++r)
    for (int64_t j = 0; j < 4; ++j) EXPECT_FLOAT_EQ(y[r * 4 + j], xv[r * 4 + j] * f.data()[r]);
  EXPECT_TRUE(gradcheck({x}, [f](const std::vector<Var>& in) { return scale_rows(in[0], f); }));
  EXPECT_THROW(scale_rows(x, Tensor::zeros({5})), Error);
}

}  // namespace

namespace {

TEST(ConcatRows, StacksAndSplitsGradients) {
  Var a = random_var({2, 3}, 21), b = random_var({4, 3}, 22);
  const auto y = concat_rows({a, b}).value().to_vector();
  const auto av = a.value().to_vector(), bv = b.value().to_vector();
  for (size_t i = 0; i < av.size(); ++i) EXPECT_EQ(y[i], av[i]);
  for (size_t i = 0; i < bv.size(); ++i) EXPECT_EQ(y[av.size() + i], bv[i]);
  EXPECT_TRUE(gradcheck({a, b}, [](const std::vector<Var>& in) {
    return concat_rows({in[0], in[1]});
  }));
  EXPECT_THROW(concat_rows({a, random_var({2, 4}, 23)}), Error);
}

}  // namespace
