#include "data/input_spec.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/checks.h"
#include "base/error.h"
#include "data/fourier_features.h"
#include "data/png_file.h"
#include "data/wav_file.h"
#include "io/config_json.h"
#include "io/read_file.h"

namespace pf {

namespace {
FourierSpec fourier_of(const InputSpec& s) {
  FourierSpec f;
  f.bands = s.bands;
  if (s.modality == "image") f.grid = {s.height / s.patch, s.width / s.patch};
  else f.grid = {s.length()};
  return f;
}
}  // namespace

int64_t InputSpec::frames() const {
  const LogMelSpec m = mel_spec();
  const int64_t n = static_cast<int64_t>(std::llround(seconds * sample_rate));
  return n < m.win ? 1 : 1 + (n - m.win) / m.hop;
}

LogMelSpec InputSpec::mel_spec() const {
  LogMelSpec m;
  m.sample_rate = sample_rate;
  m.n_mels = n_mels;
  return m;
}

int64_t InputSpec::length() const {
  if (modality == "image") return (height / patch) * (width / patch);
  if (modality == "audio") return frames();
  return max_bytes;
}

int64_t InputSpec::content_channels() const {
  if (modality == "image") return patch * patch;
  if (modality == "audio") return n_mels;
  return 1;  // the byte; expanded to one-hot by assemble_batch (a data set of 30k texts would
             // otherwise hold 256 KB each)
}

int64_t InputSpec::feature_channels() const { return modality == "text" ? 256 : content_channels(); }

int64_t InputSpec::position_channels() const { return fourier_of(*this).channels(); }

std::vector<float> InputSpec::positions() const { return fourier_position_features(fourier_of(*this)); }

void InputSpec::validate() const {
  PF_CHECK(modality == "image" || modality == "audio" || modality == "text", "input: modality '",
           modality, "' is not image, audio or text");
  check_range("input: bands", bands, 1, 64);
  if (modality == "image") {
    check_range("input: height", height, 1, 4096);
    check_range("input: width", width, 1, 4096);
    check_range("input: patch", patch, 1, std::min(height, width));
    PF_CHECK(height % patch == 0 && width % patch == 0, "input: patch ", patch,
             " does not divide the image size ", height, "x", width);
  } else if (modality == "audio") {
    check_range("input: sample_rate", sample_rate, 8000, 192000);
    check_range("input: n_mels", n_mels, 1, 256);
    check_range("input: seconds", seconds, 0.05, 60.0);
    mel_spec().check();
  } else {
    check_range("input: max_bytes", max_bytes, 1, 1 << 16);
  }
}

nlohmann::json InputSpec::to_json() const {
  nlohmann::json j = {{"modality", modality}, {"bands", bands}, {"augment", augment}};
  if (modality == "image") {
    j["height"] = height;
    j["width"] = width;
    j["patch"] = patch;
  } else if (modality == "audio") {
    j["sample_rate"] = sample_rate;
    j["n_mels"] = n_mels;
    j["seconds"] = seconds;
  } else {
    j["max_bytes"] = max_bytes;
  }
  return j;
}

InputSpec InputSpec::from_json(const nlohmann::json& j) {
  PF_CHECK(j.is_object(), "input: not a JSON object");
  InputSpec s;
  s.modality = json_str(j, "modality", "");
  s.bands = json_int(j, "bands", s.bands);
  s.height = json_int(j, "height", s.height);
  s.width = json_int(j, "width", s.width);
  s.patch = json_int(j, "patch", s.patch);
  s.sample_rate = json_int(j, "sample_rate", s.sample_rate);
  s.n_mels = json_int(j, "n_mels", s.n_mels);
  s.seconds = json_num(j, "seconds", s.seconds);
  s.max_bytes = json_int(j, "max_bytes", s.max_bytes);
  s.augment = json_bool(j, "augment", s.augment);
  s.validate();
  return s;
}

std::vector<float> InputSpec::image_content(const uint8_t* gray, int64_t h, int64_t w,
                                            const std::string& name) const {
  PF_CHECK(h == height && w == width, name, ": image is ", w, "x", h, " pixels, the model reads ",
           width, "x", height);
  const int64_t p = patch, gw = width / p, gh = height / p;
  std::vector<float> out(gh * gw * p * p);
  for (int64_t r = 0; r < gh; ++r)
    for (int64_t c = 0; c < gw; ++c)
      for (int64_t i = 0; i < p; ++i)
        for (int64_t k = 0; k < p; ++k)
          out[((r * gw + c) * p + i) * p + k] =
              gray[(r * p + i) * width + c * p + k] / 127.5f - 1.0f;
  return out;
}

std::vector<float> InputSpec::audio_content(const std::vector<float>& samples, int64_t rate,
                                            const std::string& name) const {
  PF_CHECK(rate == sample_rate, name, ": sample rate ", rate, " Hz, the model reads ", sample_rate,
           " Hz");
  const size_t n = static_cast<size_t>(std::llround(seconds * sample_rate));
  std::vector<float> clip(n, 0.0f);
  std::copy_n(samples.begin(), std::min(n, samples.size()), clip.begin());
  int64_t got = 0;
  std::vector<float> mel = log_mel(clip, mel_spec(), &got);
  PF_CHECK(got == frames(), name, ": ", got, " frames, expected ", frames());
  return mel;  // natural-log power; assemble_batch normalises each clip after augmentation
}

std::vector<float> InputSpec::text_content(const std::string& text) const {
  std::vector<float> out(max_bytes, -1.0f);  // -1: padding, an all-zero one-hot row
  const int64_t n = std::min<int64_t>(max_bytes, static_cast<int64_t>(text.size()));
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(static_cast<uint8_t>(text[i]));
  return out;
}

std::vector<float> InputSpec::file_content(const std::string& path) const {
  if (modality == "image") {
    const GrayImage img = read_png_gray(path);
    return image_content(img.pixels.data(), img.height, img.width, path);
  }
  if (modality == "audio") {
    const WavAudio a = read_wav_file(path);
    return audio_content(a.samples, a.sample_rate, path);
  }
  return text_content(read_file(path, 1 << 24));
}

void InputSpec::augment_content(float* x, Rng& rng) const {
  if (!augment) return;
  if (modality == "image") {
    // Back to pixels, shift (background -1 fills), optional flip, and into patches again.
    const int64_t p = patch, gw = width / p, H = height, W = width;
    auto at = [&](int64_t r, int64_t c) -> float& {
      return x[(((r / p) * gw + c / p) * p + r % p) * p + c % p];
    };
    std::vector<float> img(H * W);
    for (int64_t r = 0; r < H; ++r)
      for (int64_t c = 0; c < W; ++c) img[r * W + c] = at(r, c);
    const int64_t dy = static_cast<int64_t>(rng.below(5)) - 2, dx = static_cast<int64_t>(rng.below(5)) - 2;
    const bool flip = rng.below(2) == 1;
    for (int64_t r = 0; r < H; ++r)
      for (int64_t c = 0; c < W; ++c) {
        const int64_t sr = r - dy, sc0 = c - dx, sc = flip ? W - 1 - sc0 : sc0;
        at(r, c) = (sr >= 0 && sr < H && sc >= 0 && sc < W) ? img[sr * W + sc] : -1.0f;
      }
  } else if (modality == "audio") {
    const int64_t T = frames(), M = n_mels;
    // Room and breath: held-out voices differ from the training ones by echo and breathiness
    // as much as by pitch, so half the clips get an echo and half a noise floor.
    if (rng.below(2) == 1) {
      const int64_t delay = 2 + static_cast<int64_t>(rng.below(14));  // 20 to 150 ms
      add_echo(x, T, M, delay, rng.uniform(0.05f, 0.5f));
    }
    if (rng.below(2) == 1) {
      const float peak = *std::max_element(x, x + T * M);
      add_noise_floor(x, T * M, peak - rng.uniform(2.3f, 6.9f));  // 10 to 30 dB below the peak
    }
    shift_and_mask_audio(x, T, M, rng);
  }
}

namespace {
float log_add_exp(float a, float b) { return std::max(a, b) + std::log1p(std::exp(-std::abs(a - b))); }
}  // namespace

void add_echo(float* logmel, int64_t T, int64_t M, int64_t delay, float gain) {
  // Power adds: a delay of tens of milliseconds makes a comb far finer than a mel band, so
  // the phases average out within each band.
  const float lg = std::log(gain);
  for (int64_t t = T - 1; t >= delay; --t)
    for (int64_t m = 0; m < M; ++m) {
      logmel[t * M + m] = log_add_exp(logmel[t * M + m], lg + logmel[(t - delay) * M + m]);
    }
}

void add_noise_floor(float* logmel, int64_t n, float level) {
  for (int64_t i = 0; i < n; ++i) logmel[i] = log_add_exp(logmel[i], level);
}

void shift_and_mask_audio(float* x, int64_t T, int64_t M, Rng& rng) {
  // A time shift of up to 10 frames (10 ms each; vacated frames take the clip's minimum) and
  // a shift of up to 2 mel bands (edge bands repeat): pitch and formants move energy along
  // the mel axis.
  std::vector<float> src(x, x + T * M);
  const float lo = *std::min_element(src.begin(), src.end());
  const int64_t shift = static_cast<int64_t>(rng.below(21)) - 10;
  const int64_t band = static_cast<int64_t>(rng.below(5)) - 2;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t m = 0; m < M; ++m) {
      const int64_t st = t - shift, sm = std::clamp<int64_t>(m - band, 0, M - 1);
      x[t * M + m] = (st >= 0 && st < T) ? src[st * M + sm] : lo;
    }
  // Two band masks of up to M/8 bands and two time masks of up to T/10 frames, set to the
  // clip's mean (which per-clip normalisation then maps near 0).
  double sum = 0;
  for (int64_t i = 0; i < T * M; ++i) sum += x[i];
  const float mean = static_cast<float>(sum / (T * M));
  for (int k = 0; k < 2; ++k) {
    const int64_t w = static_cast<int64_t>(rng.below(M / 8 + 1)), f0 = static_cast<int64_t>(rng.below(M - w + 1));
    for (int64_t t = 0; t < T; ++t)
      for (int64_t m = f0; m < f0 + w; ++m) x[t * M + m] = mean;
    const int64_t tw = static_cast<int64_t>(rng.below(T / 10 + 1)), t0 = static_cast<int64_t>(rng.below(T - tw + 1));
    for (int64_t t = t0; t < t0 + tw; ++t)
      for (int64_t m = 0; m < M; ++m) x[t * M + m] = mean;
  }
}

void normalize_clip(float* x, int64_t n) {
  double mean = 0, var = 0;
  for (int64_t i = 0; i < n; ++i) mean += x[i];
  mean /= n;
  for (int64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  const double inv = 1.0 / std::sqrt(var / n + 1e-6);
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>((x[i] - mean) * inv);
}

Tensor assemble_batch(const InputSpec& spec, const std::vector<float>& pos, const LabeledSet& set,
                      const std::vector<int64_t>& idx) {
  const int64_t N = spec.length(), cc = spec.content_channels(), pc = spec.position_channels();
  PF_CHECK(set.length == N && set.channels == cc, "data of (", set.length, ", ", set.channels,
           ") per example does not match the input spec's (", N, ", ", cc, ")");
  const int64_t fc = spec.feature_channels(), C = fc + pc, B = static_cast<int64_t>(idx.size());
  const bool one_hot = spec.modality == "text";
  Tensor x = Tensor::empty({B, N, C});
  std::vector<float> clip;  // audio: the example normalised, (N, cc)
  for (int64_t b = 0; b < B; ++b) {
    const float* src = set.example(idx[b]);  // (N, cc)
    float* dst = x.data() + b * N * C;       // (N, C)
    if (spec.modality == "audio") {
      // Per-clip normalisation: loudness and recording level should not decide the class.
      clip.assign(src, src + N * cc);
      normalize_clip(clip.data(), N * cc);
      src = clip.data();
    }
    for (int64_t i = 0; i < N; ++i) {
      if (one_hot) {
        std::fill(dst + i * C, dst + i * C + fc, 0.0f);
        const float v = src[i];
        PF_CHECK(v == -1.0f || (v >= 0.0f && v < 256.0f && v == std::floor(v)),
                 "text data: element ", i, " holds ", v, ", not a byte");
        if (v >= 0.0f) dst[i * C + static_cast<int64_t>(v)] = 1.0f;
      } else {
        std::memcpy(dst + i * C, src + i * cc, cc * sizeof(float));
      }
      std::memcpy(dst + i * C + fc, pos.data() + i * pc, pc * sizeof(float));
    }
  }
  return x;
}

}  // namespace pf
