// Tensor views: view/reshape, transpose + contiguous, slice/select, copy_from between
// strided views, and the errors a bad view must raise.
#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <vector>

#include "base/error.h"
#include "tensor/tensor.h"

using pf::Shape;
using pf::Tensor;

namespace {
// 0, 1, 2, ... in row-major order, so a value names its original position.
Tensor iota(const Shape& shape) {
  std::vector<float> v(pf::shape_numel(shape));
  std::iota(v.begin(), v.end(), 0.0f);
  return Tensor::from(shape, v);
}
}  // namespace

TEST(Tensor, FactoriesAndAccess) {
  Tensor z = Tensor::zeros({2, 3});
  EXPECT_EQ(z.to_vector(), std::vector<float>(6, 0.0f));
  Tensor f = Tensor::full({4}, 2.5f);
  EXPECT_EQ(f.to_vector(), std::vector<float>(4, 2.5f));
  Tensor t = iota({2, 3, 4});
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.strides(), (Shape{12, 4, 1}));
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.at({1, 2, 3}), 23.0f);
  EXPECT_EQ(t.at({1, 0, 2}), 14.0f);
  EXPECT_EQ(t.size(-1), 4);
  EXPECT_EQ(t.size(0), 2);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % 64, 0u);  // storage is 64-byte aligned
  EXPECT_THROW(t.size(3), pf::Error);
  EXPECT_THROW(t.at({2, 0, 0}), pf::Error);
  EXPECT_THROW(t.at({0, 0}), pf::Error);
  EXPECT_THROW(Tensor::from({2, 2}, {1.0f, 2.0f, 3.0f}), pf::Error);
  EXPECT_THROW(Tensor::empty({2, -1}), pf::Error);
}

TEST(Tensor, ViewSharesStorage) {
  Tensor t = iota({2, 6});
  Tensor v = t.view({3, -1});
  EXPECT_EQ(v.shape(), (Shape{3, 4}));
  EXPECT_EQ(v.data(), t.data());
  EXPECT_EQ(v.at({2, 1}), 9.0f);
  v.at({0, 1}) = -1.0f;  // writes through to the original
  EXPECT_EQ(t.at({0, 1}), -1.0f);
  EXPECT_EQ(t.view({12}).to_vector(), t.to_vector());
  EXPECT_EQ(t.view({-1, 2, 3}).shape(), (Shape{2, 2, 3}));
}

TEST(Tensor, BadViewsThrow) {
  Tensor t = iota({2, 6});
  EXPECT_THROW(t.view({5, 2}), pf::Error);    // wrong numel
  EXPECT_THROW(t.view({-1, -1}), pf::Error);  // two inferred dims
  EXPECT_THROW(t.view({5, -1}), pf::Error);   // 12 is not a multiple of 5
  Tensor tt = t.transpose(0, 1);
  EXPECT_THROW(tt.view({12}), pf::Error);  // not contiguous
  EXPECT_THROW(t.slice(1, 1, 3).view({4}), pf::Error);
  EXPECT_NO_THROW(tt.contiguous().view({12}));
}

TEST(Tensor, TransposeThenContiguousReordersElements) {
  Tensor t = iota({2, 3});  // [[0 1 2] [3 4 5]]
  Tensor tt = t.transpose(0, 1);
  EXPECT_EQ(tt.shape(), (Shape{3, 2}));
  EXPECT_FALSE(tt.is_contiguous());
  EXPECT_EQ(tt.at({2, 1}), 5.0f);
  Tensor c = tt.contiguous();
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_NE(c.data(), t.data());
  EXPECT_EQ(c.to_vector(), (std::vector<float>{0, 3, 1, 4, 2, 5}));

  // 4-D, swapping the middle dims as attention layouts do: (B, T, H, d) -> (B, H, T, d).
  Tensor x = iota({2, 3, 4, 5});
  Tensor y = x.transpose(1, 2).contiguous();
  ASSERT_EQ(y.shape(), (Shape{2, 4, 3, 5}));
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < 4; ++h)
      for (int64_t s = 0; s < 3; ++s)
        for (int64_t d = 0; d < 5; ++d)
          ASSERT_EQ(y.data()[((b * 4 + h) * 3 + s) * 5 + d], float(((b * 3 + s) * 4 + h) * 5 + d));

  // Transposing back is a no-op on element order.
  EXPECT_EQ(x.transpose(0, 3).transpose(0, 3).to_vector(), x.to_vector());
  // contiguous() of a contiguous tensor is the same storage; clone() is not.
  EXPECT_EQ(x.contiguous().data(), x.data());
  Tensor cl = x.clone();
  EXPECT_NE(cl.data(), x.data());
  EXPECT_EQ(cl.to_vector(), x.to_vector());
}

TEST(Tensor, SliceAndSelect) {
  Tensor t = iota({3, 4});
  Tensor rows = t.slice(0, 1, 3);  // rows 1, 2: still contiguous
  EXPECT_EQ(rows.shape(), (Shape{2, 4}));
  EXPECT_TRUE(rows.is_contiguous());
  EXPECT_EQ(rows.to_vector(), (std::vector<float>{4, 5, 6, 7, 8, 9, 10, 11}));

  Tensor cols = t.slice(1, 1, 3);  // columns 1, 2: strided
  EXPECT_EQ(cols.shape(), (Shape{3, 2}));
  EXPECT_FALSE(cols.is_contiguous());
  EXPECT_EQ(cols.to_vector(), (std::vector<float>{1, 2, 5, 6, 9, 10}));
  EXPECT_EQ(cols.contiguous().to_vector(), cols.to_vector());

  Tensor row2 = t.select(0, 2);
  EXPECT_EQ(row2.shape(), (Shape{4}));
  EXPECT_EQ(row2.to_vector(), (std::vector<float>{8, 9, 10, 11}));
  Tensor col3 = t.select(1, 3);
  EXPECT_EQ(col3.shape(), (Shape{3}));
  EXPECT_EQ(col3.to_vector(), (std::vector<float>{3, 7, 11}));

  // Views of views: slice of a transpose, select of a slice.
  Tensor x = iota({2, 3, 4});
  // v[a][c] = x[c][1][a + 2], with x[c][s][a] = 12c + 4s + a.
  Tensor v = x.transpose(0, 2).slice(0, 2, 4).select(1, 1);
  ASSERT_EQ(v.shape(), (Shape{2, 2}));
  EXPECT_EQ(v.to_vector(), (std::vector<float>{6, 18, 7, 19}));
  for (int64_t a = 0; a < 2; ++a)
    for (int64_t c = 0; c < 2; ++c) EXPECT_EQ(v.at({a, c}), x.at({c, 1, a + 2}));

  // Writing through a slice touches only that slice.
  cols.fill(-1.0f);
  EXPECT_EQ(t.to_vector(), (std::vector<float>{0, -1, -1, 3, 4, -1, -1, 7, 8, -1, -1, 11}));

  Tensor empty = t.slice(0, 2, 2);
  EXPECT_EQ(empty.numel(), 0);
  EXPECT_TRUE(empty.to_vector().empty());

  EXPECT_THROW(t.slice(0, 2, 4), pf::Error);   // past the end
  EXPECT_THROW(t.slice(1, 3, 2), pf::Error);   // begin > end
  EXPECT_THROW(t.slice(2, 0, 1), pf::Error);   // no such dim
  EXPECT_THROW(t.slice(0, -1, 1), pf::Error);  // negative begin
  EXPECT_THROW(t.select(0, 3), pf::Error);
}

TEST(Tensor, CopyFromBetweenStridedViews) {
  // Source: a transposed (3, 4) view of a (4, 3) tensor. Destination: columns 1..4 of a
  // zeroed (3, 6) tensor. Elements outside the destination view must stay zero.
  Tensor src_base = iota({4, 3});
  Tensor src = src_base.transpose(0, 1);  // (3, 4): src[i][j] = 3j + i
  Tensor dst_base = Tensor::zeros({3, 6});
  Tensor dst = dst_base.slice(1, 1, 5);
  dst.copy_from(src);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 6; ++j) {
      const float want = (j >= 1 && j < 5) ? float(3 * (j - 1) + i) : 0.0f;
      EXPECT_EQ(dst_base.at({i, j}), want) << i << "," << j;
    }

  // Contiguous to strided and strided to contiguous round-trip.
  Tensor back = Tensor::zeros({3, 4});
  back.copy_from(dst);
  EXPECT_EQ(back.to_vector(), src.contiguous().to_vector());

  // In-place transpose of a square matrix: source and destination overlap completely.
  Tensor sq = iota({3, 3});
  sq.copy_from(sq.transpose(0, 1));
  EXPECT_EQ(sq.to_vector(), (std::vector<float>{0, 3, 6, 1, 4, 7, 2, 5, 8}));

  // Overlapping contiguous rows shifted by one (memmove semantics).
  Tensor r = iota({4, 2});
  r.slice(0, 0, 3).copy_from(r.slice(0, 1, 4));
  EXPECT_EQ(r.to_vector(), (std::vector<float>{2, 3, 4, 5, 6, 7, 6, 7}));

  EXPECT_THROW(dst.copy_from(Tensor::zeros({4, 3})), pf::Error);  // same numel, other shape
  EXPECT_THROW(dst.copy_from(Tensor::zeros({3, 5})), pf::Error);
}
