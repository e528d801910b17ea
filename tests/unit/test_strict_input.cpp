// Strict parsing of outside input: JSON depth and duplicate keys, checked sizes, ranges.
#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "base/checks.h"
#include "base/error.h"
#include "common/error_of.h"
#include "io/config_json.h"
#include "tensor/tensor.h"

namespace pf {
namespace {

using test::error_of;

TEST(StrictJson, DuplicateKeysAtAnyDepthAreErrors) {
  EXPECT_NE(error_of([] { parse_json(R"({"a": 1, "a": 2})", "x.json"); }).find("duplicate key 'a'"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              parse_json(R"({"m": {"k": 1, "k": 1}})", "x.json");
            }).find("duplicate key 'k'"),
            std::string::npos);
  // The same key in sibling objects is fine.
  EXPECT_NO_THROW(parse_json(R"([{"k": 1}, {"k": 2}])", "x.json"));
}

TEST(StrictJson, NestingIsBoundedAndTheFileNamed) {
  const std::string ok = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_NO_THROW(parse_json(ok, "ok.json"));
  const std::string deep =
      std::string(kMaxJsonDepth + 1, '[') + std::string(kMaxJsonDepth + 1, ']');
  const std::string msg = error_of([&] { parse_json(deep, "deep.json"); });
  EXPECT_EQ(msg.rfind("deep.json: invalid JSON: nested deeper than", 0), 0u) << msg;
}

TEST(StrictJson, IntegersBeyondInt64AreRefused) {
  const nlohmann::json j = parse_json(R"({"n": 18446744073709551615})", "c.json");
  EXPECT_NE(error_of([&] { json_int(j, "n"); }).find("too large"), std::string::npos);
}

TEST(CheckedSizes, TensorShapesThatOverflowAreErrors) {
  const int64_t big = int64_t{1} << 62;
  EXPECT_NE(error_of([&] {
              Tensor::empty({big, 4});
            }).find("too large to allocate"),
            std::string::npos);
  EXPECT_NE(error_of([&] { checked_mul(big, 4, "x"); }).find("too large"), std::string::npos);
  EXPECT_EQ(checked_mul(3, 5, "x"), 15);
}

TEST(Ranges, MessagesNameTheValueAndTheInterval) {
  EXPECT_EQ(error_of([] { check_range("--beta1", 1.5, 0.0, 1.0, false, true); }),
            "--beta1 1.5 is outside [0, 1)");
  EXPECT_NE(error_of([] {
              check_range("--lr", std::numeric_limits<double>::quiet_NaN(), 0.0, 1.0);
            }).find("--lr nan"),
            std::string::npos);
  EXPECT_EQ(error_of([] { check_range("--steps", int64_t{-1}, 1, 10); }),
            "--steps -1 is outside [1, 10]");
  EXPECT_NO_THROW(check_range("--dropout", 0.0, 0.0, 1.0, false, true));
}

TEST(Finite, FirstNonFiniteFindsNanAndInf) {
  Tensor t = Tensor::zeros({2, 3});
  EXPECT_EQ(first_nonfinite(t), -1);
  t.data()[4] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(first_nonfinite(t), 4);
  t.data()[1] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(first_nonfinite(t), 1);
}

}  // namespace
}  // namespace pf
