// Log-mel spectrograms for audio classification: Hann-windowed frames, a radix-2 FFT, the
// power spectrum, triangular filters equally spaced on the HTK mel scale
// (2595 log10(1 + f / 700)), then log(max(energy, floor)).
#pragma once
#include <cstdint>
#include <vector>

namespace pf {

struct LogMelSpec {
  int64_t sample_rate = 16000;
  int64_t n_fft = 512;  // a power of two >= win
  int64_t win = 400;    // 25 ms at 16 kHz
  int64_t hop = 160;    // 10 ms
  int64_t n_mels = 40;
  double f_min = 20.0, f_max = 0.0;  // 0: sample_rate / 2
  double floor = 1e-6;
  void check() const;  // errors name the bad field
};

// samples (n) -> (frames, n_mels), frames = 1 + (n - win) / hop (one zero-padded frame when
// n < win).
std::vector<float> log_mel(const std::vector<float>& samples, const LogMelSpec& s, int64_t* frames);

// The (n_mels, n_fft / 2 + 1) filterbank, row-major.
std::vector<double> mel_filterbank(const LogMelSpec& s);

// In-place radix-2 FFT of n complex values (re, im); n a power of two.
void fft_radix2(std::vector<double>& re, std::vector<double>& im);

}  // namespace pf
