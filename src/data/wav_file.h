// WAV files: RIFF/WAVE with 16-bit PCM or 32-bit float samples, mono or multi-channel
// (mixed to mono). Unknown chunks are skipped; anything malformed is a pf::Error naming the
// file and the problem.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pf {

struct WavAudio {
  int64_t sample_rate = 0;
  int64_t channels = 0;        // in the file; samples are mixed to mono
  std::vector<float> samples;  // (n) mono, in [-1, 1]
};

WavAudio parse_wav(const std::string& bytes, const std::string& name);
// Reads a file; expected_rate > 0 makes any other sample rate an error.
WavAudio read_wav_file(const std::string& path, int64_t expected_rate = 0);
// 16-bit PCM mono bytes of samples in [-1, 1] (for tests and data tools).
std::string format_wav_pcm16(const std::vector<float>& samples, int64_t sample_rate);

}  // namespace pf
