// Classification inputs: PNG read/write and bad PNGs, gzip (good, truncated, corrupt),
// the front ends' arrays against what they are defined to hold, folder and IDX data sets,
// and the validation split.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <tuple>

#include "base/error.h"
#include "base/rng.h"
#include "data/classify_data.h"
#include "data/fourier_features.h"
#include "data/idx_file.h"
#include "data/input_spec.h"
#include "data/png_file.h"
#include "data/wav_file.h"
#include "io/gzip.h"

namespace pf {
namespace {
namespace fs = std::filesystem;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

fs::path temp_dir(const std::string& tag) {
  const fs::path d = fs::temp_directory_path() / ("pf_cls_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

std::string gzip_of(const std::string& s) {
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, s.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(s.data()));
  zs.avail_in = s.size();
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = out.size();
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

GrayImage gradient_image(int64_t w, int64_t h) {
  GrayImage g;
  g.width = w;
  g.height = h;
  for (int64_t i = 0; i < w * h; ++i) g.pixels.push_back(static_cast<uint8_t>((i * 37) % 256));
  return g;
}

TEST(Png, GrayRoundTripsBitForBit) {
  const GrayImage g = gradient_image(5, 3);
  const GrayImage back = parse_png_gray(format_png_gray(g), "mem");
  EXPECT_EQ(back.width, 5);
  EXPECT_EQ(back.height, 3);
  EXPECT_EQ(back.pixels, g.pixels);
}

TEST(Png, RgbIsReadAsGray) {
  std::vector<uint8_t> rgb = {255, 255, 255, 0, 0, 0, 255, 0, 0, 0, 255, 0};  // 2x2
  const GrayImage g = parse_png_gray(format_png_rgb(rgb, 2, 2), "mem");
  ASSERT_EQ(g.pixels.size(), 4u);
  EXPECT_EQ(g.pixels[0], 255);
  EXPECT_EQ(g.pixels[1], 0);
  EXPECT_GT(g.pixels[3], g.pixels[2]);  // green is brighter than red
}

TEST(Png, BadFilesAreNamed) {
  EXPECT_NE(error_of([] { parse_png_gray("GIF89a....", "x.png"); }).find("x.png: not a PNG"),
            std::string::npos);
  const std::string good = format_png_gray(gradient_image(8, 8));
  const std::string cut = error_of([&] { parse_png_gray(good.substr(0, good.size() / 2), "cut.png"); });
  EXPECT_NE(cut.find("cut.png"), std::string::npos) << cut;
  std::string bad = good;
  bad[good.size() / 2] ^= 0x5a;  // inside the image data: a CRC or zlib error
  const std::string e = error_of([&] { parse_png_gray(bad, "bad.png"); });
  EXPECT_NE(e.find("bad.png: bad PNG"), std::string::npos) << e;
}

TEST(Gzip, RoundTripsAndNamesBadStreams) {
  const std::string text(100000, 'a');
  const std::string gz = gzip_of(text + "xyz");
  EXPECT_EQ(gunzip(gz, "f.gz"), text + "xyz");
  EXPECT_NE(error_of([&] { gunzip(gz.substr(0, gz.size() / 2), "f.gz"); }).find("f.gz: gzip data is truncated"),
            std::string::npos);
  EXPECT_NE(error_of([&] { gunzip("plain", "p"); }).find("not a gzip"), std::string::npos);
  std::string bad = gz;
  bad[12] ^= 0xff;
  EXPECT_FALSE(error_of([&] { gunzip(bad, "b.gz"); }).empty());
}

TEST(InputSpec, ImagePatchesHoldTheirPixelsThenPositions) {
  InputSpec s;
  s.height = 4;
  s.width = 6;
  s.patch = 2;
  s.bands = 3;
  ASSERT_EQ(s.length(), 6);
  ASSERT_EQ(s.content_channels(), 4);
  std::vector<uint8_t> px(24);
  for (int i = 0; i < 24; ++i) px[i] = static_cast<uint8_t>(i * 10);
  const std::vector<float> c = s.image_content(px.data(), 4, 6, "img");
  // Patch (row 1, col 2) holds pixels (2..3, 4..5), scaled to [-1, 1].
  const int64_t patch = 1 * 3 + 2;
  const int rows[4] = {2, 2, 3, 3}, cols[4] = {4, 5, 4, 5};
  for (int k = 0; k < 4; ++k)
    EXPECT_FLOAT_EQ(c[patch * 4 + k], px[rows[k] * 6 + cols[k]] / 127.5f - 1.0f);
  LabeledSet set;
  set.length = s.length();
  set.channels = s.content_channels();
  set.classes = {"a", "b"};
  set.add(c, 1);
  const std::vector<float> pos = s.positions();
  Tensor x = assemble_batch(s, pos, set, {0, 0});
  ASSERT_EQ(x.shape(), (Shape{2, 6, s.channels()}));
  FourierSpec f;
  f.grid = {2, 3};
  f.bands = 3;
  const std::vector<float> want = fourier_position_features(f);
  for (int64_t j = 0; j < f.channels(); ++j)
    EXPECT_FLOAT_EQ(x.data()[(6 + patch) * s.channels() + 4 + j], want[patch * f.channels() + j]);
  EXPECT_NE(error_of([&] { s.image_content(px.data(), 3, 8, "small.png"); })
                .find("small.png: image is 8x3 pixels, the model reads 6x4"),
            std::string::npos);
}

TEST(InputSpec, AudioChecksTheRateAndNormalisesEachClip) {
  InputSpec s;
  s.modality = "audio";
  s.seconds = 0.5;
  std::vector<float> tone(8000);
  // Broadband (a tone plus noise), so no mel band sits at the log floor.
  uint32_t r = 1;
  for (size_t i = 0; i < tone.size(); ++i) {
    r = r * 1664525u + 1013904223u;
    tone[i] = 0.2f * std::sin(0.2f * i) + 0.05f * ((r >> 8) / float(1 << 24) - 0.5f);
  }
  // Stored as log power; a batch holds the clip normalised to mean 0, variance 1.
  auto normalised = [&](const std::vector<float>& samples) {
    LabeledSet set;
    set.length = s.length();
    set.channels = s.content_channels();
    set.classes = {"tone"};
    set.add(s.audio_content(samples, 16000, "t.wav"), 0);
    const Tensor x = assemble_batch(s, s.positions(), set, {0});  // (1, frames, 40 + positions)
    std::vector<float> out;
    for (int64_t t = 0; t < s.frames(); ++t)
      for (int64_t m = 0; m < 40; ++m) out.push_back(x.data()[t * s.channels() + m]);
    return out;
  };
  const std::vector<float> a = normalised(tone);
  ASSERT_EQ(static_cast<int64_t>(a.size()), s.frames() * 40);
  double mean = 0, var = 0;
  for (float v : a) mean += v;
  mean /= a.size();
  for (float v : a) var += (v - mean) * (v - mean);
  EXPECT_NEAR(mean, 0.0, 1e-4);
  EXPECT_NEAR(var / a.size(), 1.0, 1e-3);
  // Louder by 3x: the same features (the log shifts, normalisation removes it).
  std::vector<float> loud = tone;
  for (float& v : loud) v *= 3.0f;
  const std::vector<float> b = normalised(loud);
  for (size_t i = 0; i < a.size(); i += 97) EXPECT_NEAR(a[i], b[i], 2e-2);
  const std::vector<float> raw = s.audio_content(tone, 16000, "t.wav"), raw3 = s.audio_content(loud, 16000, "t.wav");
  EXPECT_NEAR(raw3[500] - raw[500], std::log(9.0), 1e-2);  // power, natural log
  EXPECT_NE(error_of([&] { s.audio_content(tone, 8000, "slow.wav"); })
                .find("slow.wav: sample rate 8000 Hz, the model reads 16000 Hz"),
            std::string::npos);
}

TEST(InputSpec, ImageAugmentationIsAShiftAndFlipOfThePixels) {
  InputSpec s;
  s.height = 6;
  s.width = 8;
  s.patch = 2;
  std::vector<uint8_t> px(48);
  for (int i = 0; i < 48; ++i) px[i] = static_cast<uint8_t>(5 * i + 3);
  const std::vector<float> c = s.image_content(px.data(), 6, 8, "img");
  // The scalar reference: pixel (r, c) of the augmented image, in the patch layout.
  auto reference = [&](int dy, int dx, bool flip) {
    std::vector<float> out(c.size());
    for (int r = 0; r < 6; ++r)
      for (int k = 0; k < 8; ++k) {
        const int sr = r - dy, sc0 = k - dx, sc = flip ? 7 - sc0 : sc0;
        const float v = (sr >= 0 && sr < 6 && sc >= 0 && sc < 8) ? px[sr * 8 + sc] / 127.5f - 1.0f
                                                                  : -1.0f;
        out[(((r / 2) * 4 + k / 2) * 2 + r % 2) * 2 + k % 2] = v;
      }
    return out;
  };
  Rng rng(7);
  std::set<std::tuple<int, int, bool>> seen;
  for (int n = 0; n < 400; ++n) {
    std::vector<float> a = c;
    s.augment_content(a.data(), rng);
    int matches = 0;
    for (int dy = -2; dy <= 2; ++dy)
      for (int dx = -2; dx <= 2; ++dx)
        for (bool flip : {false, true})
          if (a == reference(dy, dx, flip)) {
            ++matches;
            seen.insert({dy, dx, flip});
          }
    ASSERT_EQ(matches, 1) << "draw " << n << " is not one shift and flip of the image";
  }
  EXPECT_EQ(seen.size(), 50u);  // every shift of up to 2 pixels, with and without the flip
  s.augment = false;
  std::vector<float> a = c;
  s.augment_content(a.data(), rng);
  EXPECT_EQ(a, c);
  EXPECT_FALSE(InputSpec::from_json(s.to_json()).augment);
}

TEST(InputSpec, AudioShiftsAndMasks) {
  const int64_t T = 50, M = 40;
  std::vector<float> c(T * M);
  for (int64_t i = 0; i < T * M; ++i) c[i] = 1.0f + static_cast<float>(i % 97);  // all > 0
  const float lo = 1.0f;
  Rng rng(3);
  int masked = 0;
  std::set<std::pair<int64_t, int64_t>> shifts;  // (frames, bands) that explained a draw
  for (int n = 0; n < 50; ++n) {
    std::vector<float> a = c;
    shift_and_mask_audio(a.data(), T, M, rng);
    // The masks hold the shifted clip's mean: the one value not in the source.
    std::map<float, int> count;
    for (float v : a) count[v]++;
    // Some time shift in [-10, 10] and band shift in [-2, 2] explain every value: the source
    // frame and band (edge bands repeat), the clip's minimum where the time shift vacated
    // frames, or the mask value.
    bool explained = false;
    for (int64_t sh = -10; sh <= 10 && !explained; ++sh)
      for (int64_t bs = -2; bs <= 2 && !explained; ++bs) {
        explained = true;
        int64_t off = 0;
        double sum = 0;
        std::vector<float> shifted(T * M);
        for (int64_t t = 0; t < T; ++t)
          for (int64_t m = 0; m < M; ++m) {
            const int64_t st = t - sh, sm = std::min<int64_t>(std::max<int64_t>(m - bs, 0), M - 1);
            shifted[t * M + m] = (st >= 0 && st < T) ? c[st * M + sm] : lo;
            sum += shifted[t * M + m];
          }
        const float mean = static_cast<float>(sum / (T * M));
        for (int64_t i = 0; i < T * M && explained; ++i) {
          explained = a[i] == shifted[i] || a[i] == mean;
          off += a[i] != shifted[i];
        }
        if (explained) shifts.insert({sh, bs}), masked += off;
      }
    EXPECT_TRUE(explained) << "draw " << n;
  }
  EXPECT_GT(masked, 0);
  // Both shifts vary: more than one band shift and more than one time shift were drawn.
  std::set<int64_t> frames_seen, bands_seen;
  for (const auto& [f, b] : shifts) frames_seen.insert(f), bands_seen.insert(b);
  EXPECT_GT(frames_seen.size(), 3u);
  EXPECT_GT(bands_seen.size(), 2u);
}

TEST(InputSpec, EchoAndNoiseFloorAddPower) {
  const int64_t T = 6, M = 3;
  std::vector<float> c(T * M);
  for (int64_t i = 0; i < T * M; ++i) c[i] = std::sin(1.3f * i) * 4.0f;
  std::vector<float> e = c;
  add_echo(e.data(), T, M, 2, 0.25f);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t m = 0; m < M; ++m) {
      const double p = std::exp(double(c[t * M + m])) + (t >= 2 ? 0.25 * std::exp(double(c[(t - 2) * M + m])) : 0.0);
      EXPECT_NEAR(e[t * M + m], std::log(p), 1e-5) << t << "," << m;  // echo of the dry signal only
    }
  std::vector<float> f = c;
  add_noise_floor(f.data(), T * M, -1.0f);
  for (int64_t i = 0; i < T * M; ++i)
    EXPECT_NEAR(f[i], std::log(std::exp(double(c[i])) + std::exp(-1.0)), 1e-5);
}

TEST(InputSpec, AudioAugmentationKeepsTheClipFiniteAndVaries) {
  InputSpec s;
  s.modality = "audio";
  s.seconds = 0.5;
  const int64_t T = s.frames(), M = s.n_mels;
  std::vector<float> c(T * M);
  for (int64_t i = 0; i < T * M; ++i) c[i] = -3.0f + std::sin(0.37f * i) * 5.0f;
  Rng rng(9);
  std::set<std::vector<float>> seen;
  for (int n = 0; n < 20; ++n) {
    std::vector<float> a = c;
    s.augment_content(a.data(), rng);
    for (float v : a) ASSERT_TRUE(std::isfinite(v));
    seen.insert(a);
  }
  EXPECT_EQ(seen.size(), 20u);
  s.augment = false;
  std::vector<float> same = c;
  s.augment_content(same.data(), rng);
  EXPECT_EQ(same, c);
}

TEST(InputSpec, TextIsOneHotBytesPadded) {
  InputSpec s;
  s.modality = "text";
  s.max_bytes = 4;
  s.bands = 2;
  const std::vector<float> t = s.text_content("hi\xff");
  ASSERT_EQ(t, (std::vector<float>{'h', 'i', 255, -1}));  // stored as bytes, -1 pads
  LabeledSet set;
  set.length = 4;
  set.channels = s.content_channels();
  set.classes = {"a"};
  set.add(t, 0);
  const Tensor x = assemble_batch(s, s.positions(), set, {0});  // (1, 4, 256 + positions)
  const int64_t C = s.channels();
  ASSERT_EQ(C, 256 + s.position_channels());
  for (int64_t i = 0; i < 4; ++i) {
    float sum = 0;
    for (int64_t c = 0; c < 256; ++c) sum += x.data()[i * C + c];
    EXPECT_EQ(sum, i < 3 ? 1.0f : 0.0f) << "element " << i;
  }
  EXPECT_EQ(x.data()[0 * C + 'h'], 1.0f);
  EXPECT_EQ(x.data()[1 * C + 'i'], 1.0f);
  EXPECT_EQ(x.data()[2 * C + 255], 1.0f);
  EXPECT_EQ(InputSpec::from_json(s.to_json()).to_json(), s.to_json());
  nlohmann::json bad = s.to_json();
  bad["modality"] = "video";
  EXPECT_NE(error_of([&] { InputSpec::from_json(bad); }).find("modality 'video'"), std::string::npos);
}

TEST(ClassifyData, GzippedIdxAndFoldersLoad) {
  const fs::path d = temp_dir("idx");
  IdxArray img, lab;
  img.dims = {4, 28, 28};
  for (int i = 0; i < 4 * 784; ++i) img.data.push_back(static_cast<uint8_t>(i % 251));
  lab.dims = {4};
  lab.data = {3, 1, 4, 1};
  write(d / "train-images-idx3-ubyte.gz", gzip_of(format_idx(img)));
  write(d / "train-labels-idx1-ubyte", format_idx(lab));
  const InputSpec spec = default_input_spec(d.string());
  const LabeledSet s = load_classify_data(d.string(), spec, "train");
  EXPECT_EQ(s.n, 4);
  EXPECT_EQ(s.labels, (std::vector<int32_t>{3, 1, 4, 1}));
  EXPECT_EQ(s.classes.size(), 5u);
  EXPECT_FLOAT_EQ(s.example(2)[5], img.data[2 * 784 + 5] / 127.5f - 1.0f);
  lab.data[2] = 9;
  lab.dims = {3};
  lab.data.resize(3);
  write(d / "train-labels-idx1-ubyte", format_idx(lab));
  EXPECT_NE(error_of([&] { load_classify_data(d.string(), spec, "train"); }).find("holds 4 images but"),
            std::string::npos);

  const fs::path f = temp_dir("folder");
  for (const char* cls : {"cat", "dog"})
    for (int i = 0; i < 3; ++i)
      write(f / "train" / cls / (std::to_string(i) + ".png"), format_png_gray(gradient_image(6, 4)));
  const InputSpec fs_spec = default_input_spec(f.string());
  EXPECT_EQ(fs_spec.width, 6);
  EXPECT_EQ(fs_spec.height, 4);
  const LabeledSet g = load_classify_data(f.string(), fs_spec, "train", 4);
  EXPECT_EQ(g.n, 4);
  EXPECT_EQ(g.classes, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(g.labels, (std::vector<int32_t>{0, 1, 0, 1}));  // interleaved, balanced
  write(f / "train" / "dog" / "3.png", format_png_gray(gradient_image(5, 4)));
  EXPECT_NE(error_of([&] { load_classify_data(f.string(), fs_spec, "train"); })
                .find("3.png: image is 5x4 pixels"),
            std::string::npos);
  fs::remove_all(d);
  fs::remove_all(f);
}

TEST(LabeledSet, ValidationSplitKeepsClassBalanceAndEveryExample) {
  LabeledSet s;
  s.length = 1;
  s.channels = 1;
  s.classes = {"a", "b"};
  for (int i = 0; i < 20; ++i) s.add({float(i)}, i % 2);
  LabeledSet tr, va;
  split_validation(s, 5, &tr, &va);
  EXPECT_EQ(tr.n + va.n, 20);
  EXPECT_EQ(va.n, 4);
  int b = 0;
  for (int32_t l : va.labels) b += l;
  EXPECT_EQ(b, 2);
}

}  // namespace
}  // namespace pf
