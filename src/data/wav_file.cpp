#include "data/wav_file.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "io/read_file.h"

namespace pf {

namespace {
uint32_t u32(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (uint32_t{p[3]} << 24); }
uint16_t u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
void put32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put16(std::string& s, uint16_t v) {
  s.push_back(static_cast<char>(v & 0xff));
  s.push_back(static_cast<char>(v >> 8));
}
}  // namespace

WavAudio parse_wav(const std::string& bytes, const std::string& name) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const uint64_t size = bytes.size();
  PF_CHECK(size >= 12 && std::memcmp(p, "RIFF", 4) == 0 && std::memcmp(p + 8, "WAVE", 4) == 0,
           name, ": not a WAV file (no RIFF/WAVE header)");
  WavAudio w;
  int fmt_tag = 0, bits = 0;
  bool have_fmt = false;
  uint64_t at = 12;
  while (at + 8 <= size) {
    const uint64_t len = u32(p + at + 4);
    const uint8_t* body = p + at + 8;
    PF_CHECK(len <= size - at - 8, name, ": chunk '", std::string(reinterpret_cast<const char*>(p + at), 4),
             "' runs past the end of the file (truncated)");
    if (std::memcmp(p + at, "fmt ", 4) == 0) {
      PF_CHECK(len >= 16, name, ": the fmt chunk is ", len, " bytes, at least 16 expected");
      fmt_tag = u16(body);
      w.channels = u16(body + 2);
      w.sample_rate = u32(body + 4);
      bits = u16(body + 14);
      if (fmt_tag == 0xFFFE && len >= 26) fmt_tag = u16(body + 24);  // WAVE_FORMAT_EXTENSIBLE
      PF_CHECK(w.channels >= 1 && w.channels <= 16, name, ": ", w.channels, " channels");
      PF_CHECK(w.sample_rate >= 1000 && w.sample_rate <= 384000, name, ": sample rate ",
               w.sample_rate, " Hz is not plausible");
      PF_CHECK((fmt_tag == 1 && bits == 16) || (fmt_tag == 3 && bits == 32), name,
               ": only 16-bit PCM and 32-bit float WAV are supported (format ", fmt_tag, ", ",
               bits, " bits)");
      have_fmt = true;
    } else if (std::memcmp(p + at, "data", 4) == 0) {
      PF_CHECK(have_fmt, name, ": the data chunk comes before the fmt chunk");
      const int64_t frame = w.channels * (bits / 8);
      PF_CHECK(len % frame == 0, name, ": the data chunk (", len, " bytes) is not a whole number of ",
               frame, "-byte frames");
      const int64_t n = static_cast<int64_t>(len) / frame;
      w.samples.assign(n, 0.0f);
      for (int64_t i = 0; i < n; ++i) {
        double acc = 0;
        for (int64_t c = 0; c < w.channels; ++c) {
          const uint8_t* s = body + (i * w.channels + c) * (bits / 8);
          if (bits == 16) {
            acc += static_cast<int16_t>(u16(s)) / 32768.0;
          } else {
            float f;
            std::memcpy(&f, s, 4);
            PF_CHECK(std::isfinite(f), name, ": sample ", i, " is not a finite number");
            acc += f;
          }
        }
        w.samples[i] = static_cast<float>(acc / w.channels);
      }
      return w;
    }
    at += 8 + len + (len & 1);  // chunks are padded to even sizes
  }
  fail(name, have_fmt ? ": no data chunk (truncated?)" : ": no fmt chunk (truncated?)");
}

WavAudio read_wav_file(const std::string& path, int64_t expected_rate) {
  WavAudio w = parse_wav(read_file(path, uint64_t{1} << 32), path);
  PF_CHECK(expected_rate <= 0 || w.sample_rate == expected_rate, path, ": sample rate ",
           w.sample_rate, " Hz, expected ", expected_rate, " Hz (resample it, e.g. sox IN -r ",
           expected_rate, " OUT)");
  return w;
}

std::string format_wav_pcm16(const std::vector<float>& samples, int64_t sample_rate) {
  const uint32_t data = static_cast<uint32_t>(samples.size() * 2);
  std::string s = "RIFF";
  put32(s, 36 + data);
  s += "WAVEfmt ";
  put32(s, 16);
  put16(s, 1);
  put16(s, 1);
  put32(s, static_cast<uint32_t>(sample_rate));
  put32(s, static_cast<uint32_t>(sample_rate * 2));
  put16(s, 2);
  put16(s, 16);
  s += "data";
  put32(s, data);
  for (float x : samples) {
    // The reader divides by 32768, so the writer multiplies by it (clamping +1.0 to 32767).
    const long v = std::clamp<long>(std::lround(static_cast<double>(x) * 32768.0), -32768, 32767);
    put16(s, static_cast<uint16_t>(static_cast<int16_t>(v)));
  }
  return s;
}

}  // namespace pf
