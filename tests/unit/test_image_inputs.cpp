// Image front-end pieces for Perceiver IO: IDX files (good, truncated, corrupt) and Fourier
// position features against the formula written out here.
#include <gtest/gtest.h>

#include <cmath>
#include <unistd.h>

#include <fstream>

#include "base/error.h"
#include "data/fourier_features.h"
#include "data/idx_file.h"
#include <filesystem>

namespace pf {
namespace {

IdxArray tiny_images() {
  IdxArray a;
  a.dims = {3, 2, 4};  // 3 images of 2 x 4
  for (int i = 0; i < 24; ++i) a.data.push_back(static_cast<uint8_t>(i * 10));
  return a;
}

TEST(IdxFile, RoundTripsThroughAFile) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("pf_idx_test_" + std::to_string(::getpid()))).string();
  const IdxArray a = tiny_images();
  {
    std::ofstream f(path, std::ios::binary);
    f << format_idx(a);
  }
  const IdxArray b = read_idx_file(path);
  std::filesystem::remove(path);
  EXPECT_EQ(b.dims, a.dims);
  EXPECT_EQ(b.data, a.data);
  EXPECT_EQ(b.items(), 3);
  EXPECT_EQ(b.item_size(), 8);
  // The header is big-endian: 3 images are bytes 00 00 00 03.
  const std::string bytes = format_idx(a);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\0\0\x08\x03\0\0\0\x03", 8));
}

TEST(IdxFile, BadFilesAreNamedErrors) {
  const std::string good = format_idx(tiny_images());
  auto msg = [](const std::string& bytes) {
    try {
      parse_idx(bytes, "f.idx");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(msg(good.substr(0, 3)).find("too short"), std::string::npos);
  EXPECT_NE(msg(good.substr(0, 10)).find("header is truncated"), std::string::npos);
  EXPECT_NE(msg(good.substr(0, good.size() - 1)).find("(truncated)"), std::string::npos);
  EXPECT_NE(msg(good + "x").find("(extra bytes)"), std::string::npos);
  EXPECT_NE(msg("\x1f\x8b" + good.substr(2)).find("not an IDX file"), std::string::npos);
  std::string floats = good;
  floats[2] = '\x0d';
  EXPECT_NE(msg(floats).find("value type 0x0d"), std::string::npos);
  std::string huge = good;
  huge[4] = '\x7f';  // 2^30 images claimed in a 40-byte file
  EXPECT_NE(msg(huge).find("more values than the file holds"), std::string::npos);
  std::string zero = good;
  zero[7] = '\0';
  EXPECT_NE(msg(zero).find("dimension 0 is 0"), std::string::npos);
  EXPECT_NE(msg(good).find("no error"), std::string::npos);
  for (const std::string& m : {msg(good.substr(0, 3)), msg(huge)})
    EXPECT_EQ(m.rfind("f.idx: ", 0), 0u) << m;
}

TEST(FourierFeatures, MatchTheFormulaOnA2dGrid) {
  FourierSpec s{{4, 6}, 3, true};
  ASSERT_EQ(s.channels(), 2 + 2 * 2 * 3);
  const std::vector<float> f = fourier_position_features(s);
  ASSERT_EQ(f.size(), static_cast<size_t>(24 * s.channels()));
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 6; ++j) {
      const double x[2] = {-1.0 + 2.0 * i / 3, -1.0 + 2.0 * j / 5};
      const float* row = f.data() + (i * 6 + j) * s.channels();
      EXPECT_FLOAT_EQ(row[0], static_cast<float>(x[0]));
      EXPECT_FLOAT_EQ(row[1], static_cast<float>(x[1]));
      for (int d = 0; d < 2; ++d) {
        const double maxf = (d == 0 ? 4 : 6) / 2.0;
        for (int k = 0; k < 3; ++k) {
          const double fk = 1.0 + (maxf - 1.0) * k / 2.0;
          EXPECT_NEAR(row[2 + d * 3 + k], std::sin(M_PI * fk * x[d]), 1e-6);
          EXPECT_NEAR(row[2 + 6 + d * 3 + k], std::cos(M_PI * fk * x[d]), 1e-6);
        }
      }
    }
  // The corners sit at -1 and 1; the top band reaches the grid's Nyquist frequency.
  EXPECT_FLOAT_EQ(f[(3 * 6 + 5) * s.channels()], 1.0f);
  FourierSpec n{{28, 28}, 16, false};
  EXPECT_EQ(n.channels(), 64);
  EXPECT_ANY_THROW(fourier_position_features(FourierSpec{{}, 4, true}));
  EXPECT_ANY_THROW(fourier_position_features(FourierSpec{{28, 28}, 0, true}));
}

}  // namespace
}  // namespace pf
