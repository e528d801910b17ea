#include "data/log_mel.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"

namespace pf {

namespace {
double hz_to_mel(double f) { return 2595.0 * std::log10(1.0 + f / 700.0); }
double mel_to_hz(double m) { return 700.0 * (std::pow(10.0, m / 2595.0) - 1.0); }
bool power_of_two(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }
}  // namespace

void LogMelSpec::check() const {
  PF_CHECK(sample_rate >= 1000 && sample_rate <= 384000, "log-mel: sample rate ", sample_rate);
  PF_CHECK(power_of_two(n_fft) && n_fft <= (1 << 16), "log-mel: n_fft ", n_fft,
           " must be a power of two up to 65536");
  PF_CHECK(win >= 2 && win <= n_fft, "log-mel: window ", win, " must be in [2, n_fft]");
  PF_CHECK(hop >= 1, "log-mel: hop ", hop, " must be positive");
  PF_CHECK(n_mels >= 1 && n_mels <= n_fft / 2, "log-mel: ", n_mels, " mel bands for n_fft ", n_fft);
  const double top = f_max > 0 ? f_max : sample_rate / 2.0;
  PF_CHECK(f_min >= 0 && f_min < top && top <= sample_rate / 2.0, "log-mel: band ", f_min, " to ",
           top, " Hz does not fit under the Nyquist frequency");
  PF_CHECK(floor > 0, "log-mel: floor must be positive");
}

void fft_radix2(std::vector<double>& re, std::vector<double>& im) {
  const size_t n = re.size();
  PF_CHECK(im.size() == n && power_of_two(static_cast<int64_t>(n)), "fft: size ", n);
  for (size_t i = 1, j = 0; i < n; ++i) {  // bit-reversal permutation
    size_t bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j |= bit;
    if (i < j) std::swap(re[i], re[j]), std::swap(im[i], im[j]);
  }
  // Twiddles exp(-2 pi i k / n) once; a stage of length len uses every (n / len)-th.
  std::vector<double> tw_re(n / 2), tw_im(n / 2);
  for (size_t k = 0; k < n / 2; ++k) {
    tw_re[k] = std::cos(-2.0 * M_PI * static_cast<double>(k) / static_cast<double>(n));
    tw_im[k] = std::sin(-2.0 * M_PI * static_cast<double>(k) / static_cast<double>(n));
  }
  for (size_t len = 2; len <= n; len <<= 1) {
    const size_t stride = n / len;
    for (size_t i = 0; i < n; i += len)
      for (size_t k = 0; k < len / 2; ++k) {
        const double wr = tw_re[k * stride], wi = tw_im[k * stride];
        const size_t a = i + k, b = i + k + len / 2;
        const double xr = re[b] * wr - im[b] * wi, xi = re[b] * wi + im[b] * wr;
        re[b] = re[a] - xr, im[b] = im[a] - xi;
        re[a] += xr, im[a] += xi;
      }
  }
}

std::vector<double> mel_filterbank(const LogMelSpec& s) {
  s.check();
  const int64_t bins = s.n_fft / 2 + 1;
  const double top = s.f_max > 0 ? s.f_max : s.sample_rate / 2.0;
  const double m0 = hz_to_mel(s.f_min), m1 = hz_to_mel(top);
  std::vector<double> edge(s.n_mels + 2);  // Hz
  for (int64_t i = 0; i < s.n_mels + 2; ++i)
    edge[i] = mel_to_hz(m0 + (m1 - m0) * static_cast<double>(i) / (s.n_mels + 1));
  std::vector<double> fb(s.n_mels * bins, 0.0);
  for (int64_t m = 0; m < s.n_mels; ++m)
    for (int64_t k = 0; k < bins; ++k) {
      const double f = static_cast<double>(k) * s.sample_rate / s.n_fft;
      const double up = (f - edge[m]) / (edge[m + 1] - edge[m]);
      const double down = (edge[m + 2] - f) / (edge[m + 2] - edge[m + 1]);
      fb[m * bins + k] = std::max(0.0, std::min(up, down));
    }
  return fb;
}

std::vector<float> log_mel(const std::vector<float>& samples, const LogMelSpec& s,
                           int64_t* frames_out) {
  s.check();
  const int64_t n = static_cast<int64_t>(samples.size()), bins = s.n_fft / 2 + 1;
  const int64_t frames = n < s.win ? 1 : 1 + (n - s.win) / s.hop;
  const std::vector<double> fb = mel_filterbank(s);
  std::vector<double> hann(s.win);
  for (int64_t i = 0; i < s.win; ++i) hann[i] = 0.5 - 0.5 * std::cos(2.0 * M_PI * i / s.win);
  std::vector<float> out(frames * s.n_mels);
  std::vector<double> re(s.n_fft), im(s.n_fft), power(bins);
  for (int64_t t = 0; t < frames; ++t) {
    std::fill(re.begin(), re.end(), 0.0);
    std::fill(im.begin(), im.end(), 0.0);
    for (int64_t i = 0; i < s.win; ++i) {
      const int64_t j = t * s.hop + i;
      re[i] = j < n ? samples[j] * hann[i] : 0.0;
    }
    fft_radix2(re, im);
    for (int64_t k = 0; k < bins; ++k) power[k] = re[k] * re[k] + im[k] * im[k];
    for (int64_t m = 0; m < s.n_mels; ++m) {
      double e = 0;
      for (int64_t k = 0; k < bins; ++k) e += fb[m * bins + k] * power[k];
      out[t * s.n_mels + m] = static_cast<float>(std::log(std::max(e, s.floor)));
    }
  }
  if (frames_out) *frames_out = frames;
  return out;
}

}  // namespace pf
