// Audio front-end pieces for Perceiver IO: WAV files (good, multi-channel, float, malformed)
// and the log-mel spectrogram against a direct DFT written here.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/rng.h"
#include "data/log_mel.h"
#include "data/wav_file.h"

namespace pf {
namespace {

std::string err(const std::string& bytes) {
  try {
    parse_wav(bytes, "a.wav");
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(WavFile, Pcm16RoundTripsWithinOneStep) {
  std::vector<float> x(1000);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.8f * std::sin(0.05f * i);
  const WavAudio w = parse_wav(format_wav_pcm16(x, 16000), "a.wav");
  EXPECT_EQ(w.sample_rate, 16000);
  EXPECT_EQ(w.channels, 1);
  ASSERT_EQ(w.samples.size(), x.size());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(w.samples[i], x[i], 1.0 / 32768 + 1e-6);
}

TEST(WavFile, StereoFloatAndExtraChunksAreRead) {
  // A stereo 32-bit float file with a LIST chunk of odd size before the data.
  std::string s("RIFF\0\0\0\0WAVE", 12);
  auto put32 = [&](uint32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); };
  auto put16 = [&](uint16_t v) { s.append(reinterpret_cast<const char*>(&v), 2); };
  s += "fmt ";
  put32(16), put16(3), put16(2), put32(8000), put32(8000 * 8), put16(8), put16(32);
  s += "LIST";
  put32(3);
  s += "abc";
  s.push_back('\0');  // pad byte
  s += "data";
  put32(16);
  for (float f : {0.5f, -0.5f, 1.0f, 0.0f}) s.append(reinterpret_cast<const char*>(&f), 4);
  const WavAudio w = parse_wav(s, "a.wav");
  EXPECT_EQ(w.channels, 2);
  EXPECT_EQ(w.sample_rate, 8000);
  ASSERT_EQ(w.samples.size(), 2u);
  EXPECT_FLOAT_EQ(w.samples[0], 0.0f);
  EXPECT_FLOAT_EQ(w.samples[1], 0.5f);
}

TEST(WavFile, BadFilesAreNamedErrors) {
  const std::string good = format_wav_pcm16(std::vector<float>(100, 0.1f), 16000);
  EXPECT_EQ(err(good), "no error");
  EXPECT_NE(err("hello").find("a.wav: not a WAV file"), std::string::npos);
  EXPECT_NE(err(good.substr(0, good.size() - 10)).find("truncated"), std::string::npos);
  EXPECT_NE(err(good.substr(0, 20)).find("truncated"), std::string::npos);
  std::string eight_bit = good;
  eight_bit[34] = 8;  // bits per sample
  EXPECT_NE(err(eight_bit).find("only 16-bit PCM and 32-bit float"), std::string::npos);
  std::string odd = good;
  odd[40] = 199;  // data length no longer a whole number of frames
  EXPECT_NE(err(odd).find("not a whole number"), std::string::npos);
  std::string rate = good;
  rate[24] = 1, rate[25] = 0, rate[26] = 0;  // 1 Hz
  EXPECT_NE(err(rate).find("sample rate 1 Hz"), std::string::npos);
}

// Power spectrum of one frame by the direct DFT.
std::vector<double> dft_power(const std::vector<double>& x, int64_t n_fft) {
  std::vector<double> p(n_fft / 2 + 1);
  for (int64_t k = 0; k <= n_fft / 2; ++k) {
    double re = 0, im = 0;
    for (int64_t t = 0; t < static_cast<int64_t>(x.size()); ++t) {
      re += x[t] * std::cos(2 * M_PI * k * t / n_fft);
      im -= x[t] * std::sin(2 * M_PI * k * t / n_fft);
    }
    p[k] = re * re + im * im;
  }
  return p;
}

TEST(LogMel, FftMatchesTheDirectDft) {
  Rng rng(3);
  std::vector<double> re(64), im(64, 0.0), x(64);
  for (int i = 0; i < 64; ++i) x[i] = re[i] = rng.uniform(-1.0f, 1.0f);
  fft_radix2(re, im);
  const std::vector<double> p = dft_power(x, 64);
  for (int k = 0; k <= 32; ++k) EXPECT_NEAR(re[k] * re[k] + im[k] * im[k], p[k], 1e-9) << k;
}

TEST(LogMel, MatchesAReferenceWithTheDirectDft) {
  LogMelSpec s;
  s.n_mels = 20;
  std::vector<float> audio(2000);
  Rng rng(4);
  for (size_t i = 0; i < audio.size(); ++i)
    audio[i] = 0.3f * std::sin(2 * M_PI * 440.0 * i / 16000) + 0.05f * rng.uniform(-1.0f, 1.0f);
  int64_t frames = 0;
  const std::vector<float> got = log_mel(audio, s, &frames);
  ASSERT_EQ(frames, 1 + (2000 - 400) / 160);
  // The filterbank written out: triangles between HTK-mel-spaced edges.
  auto mel = [](double f) { return 2595.0 * std::log10(1.0 + f / 700.0); };
  auto hz = [](double m) { return 700.0 * (std::pow(10.0, m / 2595.0) - 1.0); };
  std::vector<double> edge(22);
  for (int i = 0; i < 22; ++i) edge[i] = hz(mel(20.0) + (mel(8000.0) - mel(20.0)) * i / 21.0);
  for (int64_t t = 0; t < frames; t += 3) {
    std::vector<double> x(400);
    for (int i = 0; i < 400; ++i)
      x[i] = audio[t * 160 + i] * (0.5 - 0.5 * std::cos(2 * M_PI * i / 400));
    const std::vector<double> p = dft_power(x, 512);
    for (int m = 0; m < 20; ++m) {
      double e = 0;
      for (int k = 0; k <= 256; ++k) {
        const double f = k * 16000.0 / 512;
        const double w = std::max(0.0, std::min((f - edge[m]) / (edge[m + 1] - edge[m]),
                                                (edge[m + 2] - f) / (edge[m + 2] - edge[m + 1])));
        e += w * p[k];
      }
      EXPECT_NEAR(got[t * 20 + m], std::log(std::max(e, 1e-6)), 1e-4) << "frame " << t << " mel " << m;
    }
  }
  // The 440 Hz tone lands in the band whose triangle covers 440 Hz.
  int best = 0;
  for (int m = 1; m < 20; ++m)
    if (got[5 * 20 + m] > got[5 * 20 + best]) best = m;
  EXPECT_LE(edge[best], 440.0);
  EXPECT_GE(edge[best + 2], 440.0);
}

TEST(LogMel, BadSpecsAreNamed) {
  LogMelSpec s;
  s.n_fft = 500;
  EXPECT_ANY_THROW(log_mel({0.0f}, s, nullptr));
  s = LogMelSpec{};
  s.win = 1024;
  EXPECT_ANY_THROW(log_mel({0.0f}, s, nullptr));
  s = LogMelSpec{};
  int64_t frames = 0;
  EXPECT_EQ(log_mel(std::vector<float>(10, 0.0f), s, &frames).size(), 40u);  // one padded frame
  EXPECT_EQ(frames, 1);
}

}  // namespace
}  // namespace pf
