// A tokenised text corpus with a held-out validation split and seeded batch sampling.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/batch_source.h"
#include "data/tokenizer.h"

namespace pf {

// Reads a whole text file; rejects a missing, empty or non-UTF-8 file with a clear error.
std::string read_text_file(const std::string& path);
// Returns the byte offset of the first invalid UTF-8 sequence, or -1 when valid.
int64_t find_invalid_utf8(const std::string& s);

class Corpus : public BatchSource {
 public:
  // The last val_fraction of the tokens is the validation split.
  Corpus(std::vector<int32_t> tokens, int64_t text_bytes, double val_fraction);
  static Corpus from_text_file(const std::string& path, const Tokenizer& tok, double val_fraction);

  // B random windows of T+1 tokens from the train split; a pure function of (seed, step).
  Batch train_batch(int64_t B, int64_t T, uint64_t seed, uint64_t step) const override;
  // Consecutive non-overlapping windows of the validation split, batch `index`.
  Batch val_batch(int64_t B, int64_t T, int64_t index) const override;
  int64_t num_val_batches(int64_t B, int64_t T) const override;
  void check_fits(int64_t B, int64_t T) const override;

  int64_t train_tokens() const { return split_; }
  int64_t val_tokens() const { return static_cast<int64_t>(tokens_.size()) - split_; }
  // Bytes of text per token, to turn nats/token into bits/byte.
  double bytes_per_token() const override { return bytes_per_token_; }

 private:
  std::vector<int32_t> tokens_;
  int64_t split_ = 0;
  double bytes_per_token_ = 1.0;
};

}  // namespace pf
