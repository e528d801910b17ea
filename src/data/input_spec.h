// The front end of a classifier: how a raw example (an image, a clip, a text) becomes the
// (length, channels) input array, saved under "input" in the classifier's config.json so
// that `classify predict` encodes a new file exactly as training did.
//   image: pixels in [-1, 1], grouped into patch x patch tiles (patch 1 = one pixel per
//          element), plus Fourier features of each tile's (row, col) position.
//   audio: log-mel frames of a clip padded or cut to `seconds` (stored as natural-log power,
//          normalised per clip when a batch is assembled), plus Fourier features of the frame.
//   text:  one byte per element as a one-hot of 256, padded to max_bytes with zeros, plus
//          Fourier features of the byte position.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "autograd/tape.h"
#include "base/rng.h"
#include "data/labeled_set.h"
#include "data/log_mel.h"

namespace pf {

struct InputSpec {
  std::string modality = "image";
  int64_t height = 28, width = 28, patch = 1;  // image
  int64_t sample_rate = 16000, n_mels = 40;    // audio
  double seconds = 1.0;
  int64_t max_bytes = 256;  // text
  int64_t bands = 8;        // Fourier bands per axis
  // Training-time augmentation (ignored at inference): images shift by up to 2 pixels and
  // flip left-right; audio gets an echo or a noise floor, shifts in time and along the mel
  // axis, and SpecAugment-style band and time masks.
  bool augment = true;

  int64_t length() const;            // N
  int64_t content_channels() const;  // what a LabeledSet stores per element
  int64_t position_channels() const;
  int64_t feature_channels() const;  // what the model sees per element before positions
  int64_t channels() const { return feature_channels() + position_channels(); }  // C
  int64_t frames() const;  // audio: log-mel frames per clip
  LogMelSpec mel_spec() const;
  // (length, position_channels) features, the same for every example.
  std::vector<float> positions() const;

  // Raw example -> content (length, content_channels). `name` is used in errors.
  std::vector<float> image_content(const uint8_t* gray, int64_t h, int64_t w,
                                   const std::string& name) const;
  std::vector<float> audio_content(const std::vector<float>& samples, int64_t rate,
                                   const std::string& name) const;
  std::vector<float> text_content(const std::string& text) const;
  // A file by its modality: PNG for images, WAV for audio, anything for text.
  std::vector<float> file_content(const std::string& path) const;

  // Augments one example's content (length, content_channels) in place.
  void augment_content(float* content, Rng& rng) const;

  void validate() const;  // errors name the bad field
  nlohmann::json to_json() const;
  static InputSpec from_json(const nlohmann::json& j);
};

// Audio augmentation pieces, on a (T, M) natural-log mel clip in place.
void add_echo(float* logmel, int64_t T, int64_t M, int64_t delay, float gain);  // + gain * P(t - delay)
void add_noise_floor(float* logmel, int64_t n, float level);  // + exp(level) in power
void shift_and_mask_audio(float* logmel, int64_t T, int64_t M, Rng& rng);
void normalize_clip(float* x, int64_t n);  // to mean 0, variance 1

// Examples `idx` of `set` with the position features appended -> (B, length, channels).
Tensor assemble_batch(const InputSpec& spec, const std::vector<float>& positions,
                      const LabeledSet& set, const std::vector<int64_t>& idx);

}  // namespace pf
