#include "data/corpus.h"

#include <fstream>
#include <sstream>

#include "base/error.h"
#include "io/read_file.h"
#include "base/rng.h"

namespace pf {

int64_t find_invalid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const int64_t n = static_cast<int64_t>(s.size());
  for (int64_t i = 0; i < n;) {
    const unsigned char c = p[i];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > n) return i;
    for (int k = 1; k < len; ++k)
      if ((p[i + k] & 0xC0) != 0x80) return i;
    // Reject overlong forms and surrogates.
    if (len == 2 && c < 0xC2) return i;
    if (len == 3 && ((c == 0xE0 && p[i + 1] < 0xA0) || (c == 0xED && p[i + 1] >= 0xA0))) return i;
    if (len == 4 && ((c == 0xF0 && p[i + 1] < 0x90) || c > 0xF4 || (c == 0xF4 && p[i + 1] >= 0x90)))
      return i;
    i += len;
  }
  return -1;
}

std::string read_text_file(const std::string& path) {
  std::string text = read_file(path);
  PF_CHECK(!text.empty(), "data file ", path, " is empty");
  const int64_t bad = find_invalid_utf8(text);
  PF_CHECK(bad < 0, "data file ", path, " is not valid UTF-8 (first bad byte at offset ", bad,
           "); pass token ids with --tokens instead");
  return text;
}

Corpus::Corpus(std::vector<int32_t> tokens, int64_t text_bytes, double val_fraction)
    : tokens_(std::move(tokens)) {
  PF_CHECK(val_fraction > 0.0 && val_fraction < 1.0, "validation fraction must be in (0, 1)");
  const int64_t n = static_cast<int64_t>(tokens_.size());
  split_ = n - static_cast<int64_t>(n * val_fraction);
  bytes_per_token_ = n > 0 ? static_cast<double>(text_bytes) / n : 1.0;
}

Corpus Corpus::from_text_file(const std::string& path, const Tokenizer& tok, double val_fraction) {
  const std::string text = read_text_file(path);
  return Corpus(tok.encode(text), static_cast<int64_t>(text.size()), val_fraction);
}

Batch Corpus::train_batch(int64_t B, int64_t T, uint64_t seed, uint64_t step) const {
  PF_CHECK(split_ > T + 1, "training split has ", split_, " tokens, too few for windows of ",
           T + 1);
  Rng rng(seed, 1000003ULL + step);
  Batch b;
  b.B = B, b.T = T;
  b.inputs.resize(B * T);
  b.targets.resize(B * T);
  for (int64_t i = 0; i < B; ++i) {
    const int64_t start = static_cast<int64_t>(rng.below(split_ - T - 1));
    for (int64_t t = 0; t < T; ++t) {
      b.inputs[i * T + t] = tokens_[start + t];
      b.targets[i * T + t] = tokens_[start + t + 1];
    }
  }
  return b;
}

int64_t Corpus::num_val_batches(int64_t B, int64_t T) const { return (val_tokens() - 1) / (B * T); }

Batch Corpus::val_batch(int64_t B, int64_t T, int64_t index) const {
  PF_CHECK(index < num_val_batches(B, T), "validation split too small for batch ", index);
  Batch b;
  b.B = B, b.T = T;
  b.inputs.resize(B * T);
  b.targets.resize(B * T);
  const int64_t base = split_ + index * B * T;
  for (int64_t i = 0; i < B * T; ++i) {
    b.inputs[i] = tokens_[base + i];
    b.targets[i] = tokens_[base + i + 1];
  }
  return b;
}

void Corpus::check_fits(int64_t B, int64_t T) const {
  PF_CHECK(train_tokens() > T + 1, "the training split has ", train_tokens(),
           " tokens, too few for one window of --seq ", T, " + 1");
  PF_CHECK(num_val_batches(B, T) > 0, "the validation split (", val_tokens(),
           " tokens) is too small for one batch of --batch ", B, " x --seq ", T,
           " (+1); use more data, a larger --val-fraction or a smaller batch");
}

}  // namespace pf
