#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>

#include "base/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "tensor/dtype_convert.h"

namespace fs = std::filesystem;
using namespace pf;

namespace {

// A fresh directory per test, removed afterwards.
class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    const auto* ti = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("pf_safetensors_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(counter++) + "_" + ti->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  // Writes a raw safetensors file: length prefix, header text, data bytes.
  std::string raw(const std::string& header, const std::string& data = "",
                  const std::string& name = "raw.safetensors") const {
    std::string s(8, '\0');
    const uint64_t n = header.size();
    std::memcpy(s.data(), &n, 8);
    s += header;
    s += data;
    write_file_atomic(file(name), s);
    return file(name);
  }

  fs::path dir_;
};

float from_bits(uint32_t b) { return std::bit_cast<float>(b); }
uint32_t bits(float f) { return std::bit_cast<uint32_t>(f); }

// Expects constructing/using the file to throw a pf::Error mentioning `needle`.
template <typename F>
void expect_error(F f, const std::string& needle) {
  try {
    f();
    FAIL() << "expected pf::Error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "message: " << e.what() << "\nexpected to contain: " << needle;
  }
}

}  // namespace

// ---- dtype conversions ----

TEST(DtypeConvert, F16KnownValues) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3C00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xC000);
  EXPECT_EQ(f32_to_f16(0.0f), 0x0000);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7BFF);  // largest finite
  EXPECT_EQ(f32_to_f16(0.5f), 0x3800);
  EXPECT_EQ(f16_to_f32(0x3C00), 1.0f);
  EXPECT_EQ(f16_to_f32(0x3555), 0.333251953125f);
  EXPECT_EQ(f16_to_f32(0x7BFF), 65504.0f);
  EXPECT_EQ(f16_to_f32(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(bits(f16_to_f32(0x8000)), 0x80000000u);
}

TEST(DtypeConvert, F16Subnormals) {
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(0x03FF), 1023.0f * std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(0x0200), std::ldexp(1.0f, -15));
  EXPECT_EQ(f16_to_f32(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(f32_to_f16(1023.0f * std::ldexp(1.0f, -24)), 0x03FF);
  // Exactly half the smallest subnormal ties to even (zero); just above rounds up.
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);
  EXPECT_EQ(f32_to_f16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  // 1.5 * 2^-24 ties between 1 and 2 subnormal units: even is 2.
  EXPECT_EQ(f32_to_f16(1.5f * std::ldexp(1.0f, -24)), 0x0002);
  // 2.5 units ties to 2.
  EXPECT_EQ(f32_to_f16(2.5f * std::ldexp(1.0f, -24)), 0x0002);
  // Rounds up from the largest subnormal into the smallest normal.
  EXPECT_EQ(f32_to_f16(1023.75f * std::ldexp(1.0f, -24)), 0x0400);
  EXPECT_EQ(f32_to_f16(1e-30f), 0x0000);
  EXPECT_EQ(f32_to_f16(from_bits(0x00000001)), 0x0000);  // f32 denormal
  EXPECT_EQ(f32_to_f16(-1e-30f), 0x8000);
}

TEST(DtypeConvert, F16RoundToNearestEven) {
  const float ulp = std::ldexp(1.0f, -10);            // f16 spacing in [1, 2)
  EXPECT_EQ(f32_to_f16(1.0f + ulp / 2), 0x3C00);      // tie, even is down
  EXPECT_EQ(f32_to_f16(1.0f + 3 * ulp / 2), 0x3C02);  // tie, even is up
  EXPECT_EQ(f32_to_f16(std::nextafter(1.0f + ulp / 2, 2.0f)), 0x3C01);
  EXPECT_EQ(f32_to_f16(std::nextafter(1.0f + ulp / 2, 0.0f)), 0x3C00);
  EXPECT_EQ(f32_to_f16(2047.0f / 1024.0f + ulp / 2), 0x4000);  // carry into the exponent
}

TEST(DtypeConvert, F16InfNanOverflow) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(f32_to_f16(inf), 0x7C00);
  EXPECT_EQ(f32_to_f16(-inf), 0xFC00);
  EXPECT_EQ(f32_to_f16(1e6f), 0x7C00);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);  // halfway to 2^16 rounds (even) to inf
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7BFF);
  EXPECT_TRUE(std::isinf(f16_to_f32(0x7C00)));
  EXPECT_TRUE(std::isinf(f16_to_f32(0xFC00)) && f16_to_f32(0xFC00) < 0);
  const uint16_t qnan = f32_to_f16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(qnan & 0x7C00, 0x7C00);
  EXPECT_NE(qnan & 0x03FF, 0);
  // A NaN whose payload sits only in the low bits must not turn into inf.
  const uint16_t low = f32_to_f16(from_bits(0x7F800001));
  EXPECT_NE(low & 0x03FF, 0);
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7E00)));
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7C01)));
  EXPECT_EQ(bits(f16_to_f32(0x7E00)), 0x7FC00000u);
}

TEST(DtypeConvert, F16ExhaustiveRoundTrip) {
  // Every non-NaN f16 survives f16 -> f32 -> f16 unchanged.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0) {
      EXPECT_TRUE(std::isnan(f16_to_f32(static_cast<uint16_t>(h))));
      continue;
    }
    ASSERT_EQ(f32_to_f16(f16_to_f32(static_cast<uint16_t>(h))), h) << std::hex << h;
  }
}

TEST(DtypeConvert, Bf16KnownValues) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(f32_to_bf16(-2.0f), 0xC000);
  EXPECT_EQ(f32_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(bf16_to_f32(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0x4049), 3.140625f);
  // Round to nearest even on the 16 dropped bits.
  EXPECT_EQ(f32_to_bf16(from_bits(0x3F808000)), 0x3F80);  // tie, even is down
  EXPECT_EQ(f32_to_bf16(from_bits(0x3F818000)), 0x3F82);  // tie, even is up
  EXPECT_EQ(f32_to_bf16(from_bits(0x3F808001)), 0x3F81);
  EXPECT_EQ(f32_to_bf16(from_bits(0x3F807FFF)), 0x3F80);
  EXPECT_EQ(f32_to_bf16(from_bits(0x7F7FFFFF)), 0x7F80);  // max f32 rounds to inf
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(f32_to_bf16(-std::numeric_limits<float>::infinity()), 0xFF80);
  EXPECT_EQ(f32_to_bf16(from_bits(0x00010000)), 0x0001);  // denormal stays exact
}

TEST(DtypeConvert, Bf16NanStaysNan) {
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  // Payload only in the low 16 bits: truncation alone would give inf.
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(from_bits(0x7F800001)))));
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(from_bits(0xFFFFFFFF)))));
  EXPECT_EQ(f32_to_bf16(from_bits(0x7FC00000)), 0x7FC0);
}

// ---- round trips ----

TEST_F(SafetensorsTest, F32RoundTripBitExact) {
  const std::vector<uint32_t> patterns = {0x00000000, 0x80000000,              // +0, -0
                                          0x00000001, 0x007FFFFF, 0x80000001,  // denormals
                                          0x7F800000, 0xFF800000,              // inf
                                          0x7FC00000, 0x7F800001, 0xFFC12345,
                                          0x7FBFFFFF,  // NaNs with payloads
                                          0x3F800000, 0x7F7FFFFF, 0x3EAAAAAB};
  std::vector<float> vals;
  for (uint32_t p : patterns) vals.push_back(from_bits(p));
  const Tensor a = Tensor::from({static_cast<int64_t>(vals.size())}, vals);
  const Tensor b = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
  write_safetensors(file("a.safetensors"), {{"a", a}, {"b", b}});

  SafetensorsFile f(file("a.safetensors"));
  EXPECT_EQ(f.names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(f.info("a").dtype, DType::F32);
  EXPECT_EQ(f.info("a").shape, a.shape());
  // Packed in the given order.
  EXPECT_EQ(f.info("a").begin, 0u);
  EXPECT_EQ(f.info("a").end, vals.size() * 4);
  EXPECT_EQ(f.info("b").begin, vals.size() * 4);
  const Tensor la = f.load_f32("a");
  ASSERT_EQ(la.shape(), a.shape());
  EXPECT_EQ(std::memcmp(la.data(), vals.data(), vals.size() * 4), 0);
  const Tensor lb = f.load_f32("b", {2, 3});
  EXPECT_EQ(lb.to_vector(), b.to_vector());
  EXPECT_TRUE(f.metadata().empty());
}

TEST_F(SafetensorsTest, HeaderIsPaddedAndDataAligned) {
  write_safetensors(file("p.safetensors"), {{"xyz", Tensor::from({1}, {1.0f})}});
  const std::string bytes = read_file(file("p.safetensors"));
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + 4);
}

TEST_F(SafetensorsTest, F16AndBf16RoundTrip) {
  // Exactly representable in both formats.
  const std::vector<float> vals = {0.0f, -0.0f, 1.0f, -2.5f, 0.375f, 1024.0f, -0.0078125f, 3.0f};
  const Tensor t = Tensor::from({2, 4}, vals);
  for (DType dt : {DType::F16, DType::BF16}) {
    const std::string p = file(std::string(dtype_name(dt)) + ".safetensors");
    write_safetensors(p, {{"w", t}}, {}, dt);
    SafetensorsFile f(p);
    EXPECT_EQ(f.info("w").dtype, dt);
    EXPECT_EQ(f.info("w").end - f.info("w").begin, vals.size() * 2);
    const Tensor l = f.load_f32("w", {2, 4});
    EXPECT_EQ(std::memcmp(l.data(), vals.data(), vals.size() * 4), 0) << dtype_name(dt);
  }
}

TEST_F(SafetensorsTest, F16SubnormalAndInfRoundTrip) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> vals = {std::ldexp(1.0f, -24), 65504.0f, inf, -inf};
  write_safetensors(file("h.safetensors"), {{"h", Tensor::from({4}, vals)}}, {}, DType::F16);
  SafetensorsFile f(file("h.safetensors"));
  EXPECT_EQ(f.load_f32("h").to_vector(), vals);
}

TEST_F(SafetensorsTest, MetadataRoundTrip) {
  const std::map<std::string, std::string> meta = {
      {"format", "pt"}, {"step", "1200"}, {"note", "quotes \" and \\ and unicode \xc3\xa9"}};
  write_safetensors(file("m.safetensors"), {{"x", Tensor::zeros({3})}}, meta);
  SafetensorsFile f(file("m.safetensors"));
  EXPECT_EQ(f.metadata(), meta);
}

TEST_F(SafetensorsTest, NonContiguousTensorWrittenInLogicalOrder) {
  const Tensor a = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
  const Tensor at = a.transpose(0, 1);  // (3, 2)
  ASSERT_FALSE(at.is_contiguous());
  const Tensor col = a.slice(1, 1, 2);  // (2, 1) strided
  for (DType dt : {DType::F32, DType::BF16}) {
    const std::string p = file(std::string("t_") + dtype_name(dt) + ".safetensors");
    write_safetensors(p, {{"at", at}, {"col", col}}, {}, dt);
    SafetensorsFile f(p);
    EXPECT_EQ(f.load_f32("at", {3, 2}).to_vector(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
    EXPECT_EQ(f.load_f32("col", {2, 1}).to_vector(), (std::vector<float>{2, 5}));
  }
}

TEST_F(SafetensorsTest, ZeroElementAndScalarTensors) {
  write_safetensors(file("z.safetensors"),
                    {{"empty", Tensor::zeros({0, 4})}, {"scalar", Tensor::full({}, 7.0f)}});
  SafetensorsFile f(file("z.safetensors"));
  EXPECT_EQ(f.load_f32("empty", {0, 4}).numel(), 0);
  EXPECT_EQ(f.load_f32("scalar", {}).to_vector(), std::vector<float>{7.0f});
}

TEST_F(SafetensorsTest, WriterRejectsBadInput) {
  const Tensor t = Tensor::zeros({1});
  expect_error(
      [&] {
        write_safetensors(file("d.safetensors"), {{"a", t}, {"a", t}});
      },
      "duplicate tensor name 'a'");
  expect_error(
      [&] {
        write_safetensors(file("d.safetensors"), {{"__metadata__", t}});
      },
      "__metadata__");
  expect_error([&] { write_safetensors(file("d.safetensors"), {{"u", Tensor()}}); }, "undefined");
  EXPECT_FALSE(fs::exists(file("d.safetensors")));
}

// ---- malformed files ----

TEST_F(SafetensorsTest, MissingTensor) {
  write_safetensors(file("m.safetensors"), {{"x", Tensor::zeros({2})}});
  SafetensorsFile f(file("m.safetensors"));
  EXPECT_FALSE(f.has("y"));
  expect_error([&] { f.info("y"); }, file("m.safetensors") + ": missing tensor 'y'");
  expect_error([&] { f.load_f32("y"); }, "missing tensor 'y'");
}

TEST_F(SafetensorsTest, WrongShape) {
  write_safetensors(file("s.safetensors"), {{"w", Tensor::zeros({3, 2})}});
  SafetensorsFile f(file("s.safetensors"));
  expect_error(
      [&] {
        f.load_f32("w", {2, 3});
      },
      file("s.safetensors") + ": tensor 'w' has shape [3, 2], expected [2, 3]");
}

TEST_F(SafetensorsTest, NonexistentFile) {
  expect_error([&] { SafetensorsFile f(file("nope.safetensors")); },
               file("nope.safetensors") + ": cannot open: No such file");
}

TEST_F(SafetensorsTest, EmptyFile) {
  write_file_atomic(file("e.safetensors"), std::string());
  expect_error([&] { SafetensorsFile f(file("e.safetensors")); }, "file is 0 bytes, too short");
}

TEST_F(SafetensorsTest, ShorterThanEightBytes) {
  write_file_atomic(file("s.safetensors"), std::string("\x02\0\0", 3));
  expect_error([&] { SafetensorsFile f(file("s.safetensors")); },
               file("s.safetensors") + ": file is 3 bytes, too short");
}

TEST_F(SafetensorsTest, HeaderLengthExceedsFile) {
  const std::string p = raw("{}");
  std::string bytes = read_file(p);
  const uint64_t n = 1000;
  std::memcpy(bytes.data(), &n, 8);
  write_file_atomic(p, bytes);
  expect_error([&] { SafetensorsFile f(p); }, "header length 1000 exceeds file size 10");
  // A huge length must not overflow the bounds check.
  const uint64_t huge = ~0ull;
  std::memcpy(bytes.data(), &huge, 8);
  write_file_atomic(p, bytes);
  expect_error([&] { SafetensorsFile f(p); }, "header length");
}

TEST_F(SafetensorsTest, InvalidJson) {
  const std::string p = raw("{\"a\": [1, 2");
  expect_error([&] { SafetensorsFile f(p); }, p + ": header: invalid JSON");
  const std::string q = raw("[1, 2]", "", "q.safetensors");
  expect_error([&] { SafetensorsFile f(q); }, "header is not a JSON object");
}

TEST_F(SafetensorsTest, EntryNotAnObject) {
  const std::string p = raw(R"({"x": 5})");
  expect_error([&] { SafetensorsFile f(p); }, "tensor 'x': entry is not a JSON object");
}

TEST_F(SafetensorsTest, EntryMissingFields) {
  const std::string a = raw(R"({"x": {"shape": [1], "data_offsets": [0, 4]}})",
                            std::string(4, '\0'), "a.safetensors");
  expect_error([&] { SafetensorsFile f(a); }, "tensor 'x': missing 'dtype'");
  const std::string b = raw(R"({"x": {"dtype": "F32", "data_offsets": [0, 4]}})",
                            std::string(4, '\0'), "b.safetensors");
  expect_error([&] { SafetensorsFile f(b); }, "tensor 'x': missing 'shape'");
  const std::string c =
      raw(R"({"x": {"dtype": "F32", "shape": [1]}})", std::string(4, '\0'), "c.safetensors");
  expect_error([&] { SafetensorsFile f(c); }, "tensor 'x': missing 'data_offsets'");
}

TEST_F(SafetensorsTest, UnsupportedDtype) {
  const std::string p =
      raw(R"({"x": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}})", std::string(8, '\0'));
  expect_error([&] { SafetensorsFile f(p); }, p + ": unsupported dtype 'I64' for tensor 'x'");
}

TEST_F(SafetensorsTest, NegativeShape) {
  const std::string p = raw(R"({"x": {"dtype": "F32", "shape": [2, -1], "data_offsets": [0, 0]}})");
  expect_error([&] { SafetensorsFile f(p); }, "tensor 'x': shape [2,-1] has a negative");
  const std::string q = raw(R"({"x": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 0]}})",
                            "", "q.safetensors");
  expect_error([&] { SafetensorsFile f(q); }, "non-integer");
}

TEST_F(SafetensorsTest, HugeShapeDoesNotOverflow) {
  const std::string p = raw(
      R"({"x": {"dtype": "F32", "shape": [4294967296, 4294967296, 4], "data_offsets": [0, 0]}})");
  expect_error([&] { SafetensorsFile f(p); }, "is too large");
}

TEST_F(SafetensorsTest, DataOffsetsOutOfBounds) {
  const std::string p = raw(R"({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})",
                            std::string(8, '\0'));
  expect_error([&] { SafetensorsFile f(p); },
               "tensor 'x': data_offsets [0, 16] out of bounds of the data section (8 bytes)");
}

TEST_F(SafetensorsTest, DataOffsetsBeginAfterEnd) {
  const std::string p =
      raw(R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})", std::string(8, '\0'));
  expect_error([&] { SafetensorsFile f(p); }, "begin > end");
  const std::string q = raw(R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})",
                            std::string(8, '\0'), "q.safetensors");
  expect_error([&] { SafetensorsFile f(q); }, "not a pair of non-negative integers");
  const std::string r = raw(R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})",
                            std::string(8, '\0'), "r.safetensors");
  expect_error([&] { SafetensorsFile f(r); }, "not a pair");
}

TEST_F(SafetensorsTest, ByteSizeMismatch) {
  const std::string p = raw(R"({"x": {"dtype": "F16", "shape": [2, 3], "data_offsets": [0, 8]}})",
                            std::string(8, '\0'));
  expect_error([&] { SafetensorsFile f(p); },
               "tensor 'x': byte size 8 does not match shape [2, 3] F16 (expected 12 bytes)");
}

TEST_F(SafetensorsTest, BadMetadata) {
  const std::string p = raw(R"({"__metadata__": {"k": 3}})");
  expect_error([&] { SafetensorsFile f(p); }, "metadata value for 'k' is not a string");
  const std::string q = raw(R"({"__metadata__": "x"})", "", "q.safetensors");
  expect_error([&] { SafetensorsFile f(q); }, "__metadata__ is not a JSON object");
}

TEST_F(SafetensorsTest, ReadsForeignUnalignedFile) {
  // Header length 5 leaves the data section unaligned; loading must still work.
  const std::string hdr = R"({"x": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}})";
  const uint16_t data[2] = {0x3F80, 0xC000};
  const std::string p = raw(hdr, std::string(reinterpret_cast<const char*>(data), 4));
  SafetensorsFile f(p);
  EXPECT_EQ(f.load_f32("x").to_vector(), (std::vector<float>{1.0f, -2.0f}));
}

// ---- atomic file writes ----

TEST_F(SafetensorsTest, WriteFileAtomicReplacesAndLeavesNoTemp) {
  const std::string p = file("out.txt");
  write_file_atomic(p, std::string("first version, longer"));
  EXPECT_EQ(read_file(p), "first version, longer");
  write_file_atomic(p, std::string("second"));
  EXPECT_EQ(read_file(p), "second");
  write_file_atomic(p, [](std::FILE* f) { std::fputs("third", f); });
  EXPECT_EQ(read_file(p), "third");
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(dir_)) entries.push_back(e.path().filename());
  EXPECT_EQ(entries, std::vector<std::string>{"out.txt"});
}

TEST_F(SafetensorsTest, WriteFileAtomicFailureKeepsOldFileAndCleansUp) {
  const std::string p = file("keep.txt");
  write_file_atomic(p, std::string("old"));
  expect_error([&] { write_file_atomic(p, [](std::FILE*) { fail("writer broke"); }); },
               "writer broke");
  EXPECT_EQ(read_file(p), "old");
  EXPECT_FALSE(fs::exists(p + ".tmp." + std::to_string(::getpid())));
  // Unwritable location: the error names the path and the reason.
  const std::string bad = file("no_such_dir/x.txt");
  expect_error([&] { write_file_atomic(bad, std::string("x")); }, bad);
  expect_error([&] { write_file_atomic(bad, std::string("x")); }, "No such file or directory");
}

TEST_F(SafetensorsTest, ReadFileMissing) {
  expect_error([&] { read_file(file("missing")); },
               "cannot open " + file("missing") + ": No such file or directory");
}

// ---- strict conformance: the data section is covered exactly, keys are unique ----

TEST_F(SafetensorsTest, OverlappingOffsetsAreRefused) {
  const std::string p = raw(
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
      std::string(8, '\0'));
  expect_error([&] { SafetensorsFile f(p); }, "overlaps the tensor before it");
}

TEST_F(SafetensorsTest, GapsAndTrailingBytesAreRefused) {
  const std::string gap = raw(
      R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
      std::string(12, '\0'), "gap.safetensors");
  expect_error([&] { SafetensorsFile f(gap); }, "gap of 4 bytes before tensor 'b'");
  const std::string lead = raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                               std::string(8, '\0'), "lead.safetensors");
  expect_error([&] { SafetensorsFile f(lead); }, "gap of 4 bytes before tensor 'a'");
  const std::string tail = raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                               std::string(9, '\0'), "tail.safetensors");
  expect_error([&] { SafetensorsFile f(tail); }, "trailing bytes");
}

TEST_F(SafetensorsTest, DuplicateKeysAndDeepNestingAreRefused) {
  const std::string dup = raw(
      R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
      std::string(4, '\0'), "dup.safetensors");
  expect_error([&] { SafetensorsFile f(dup); }, "duplicate key 'a'");
  const std::string deep =
      raw(std::string(100000, '[') + std::string(100000, ']'), "", "deep.safetensors");
  expect_error([&] { SafetensorsFile f(deep); }, "nested deeper than");
}

TEST_F(SafetensorsTest, FifoIsRefusedWithoutBlocking) {
  const std::string p = file("fifo.safetensors");
  ASSERT_EQ(::mkfifo(p.c_str(), 0600), 0);
  expect_error([&] { SafetensorsFile f(p); }, "not a regular file");
  expect_error([&] { (void)read_file(p); }, "not a regular file (a FIFO)");
  // Writing over it would replace something we did not make.
  expect_error([&] { write_file_atomic(p, "x"); }, "exists and is not a regular file");
}
