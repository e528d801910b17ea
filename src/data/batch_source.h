// What the trainer draws batches from: a text corpus, or a synthetic task generated on the
// fly. Targets < 0 are ignored by the loss (tasks score only their answer positions).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pf {

struct Batch {
  std::vector<int32_t> inputs;   // (B, T)
  std::vector<int32_t> targets;  // (B, T): next tokens; negative = not scored
  int64_t B = 0, T = 0;
};

// The targets of the last `rows` positions of each sequence: (B, rows). A model whose
// forward returns logits only there (Perceiver AR's latents) is scored on these.
inline std::vector<int32_t> tail_targets(const Batch& b, int64_t rows) {
  if (rows == b.T) return b.targets;
  std::vector<int32_t> t;
  t.reserve(b.B * rows);
  for (int64_t i = 0; i < b.B; ++i)
    t.insert(t.end(), b.targets.begin() + i * b.T + (b.T - rows),
             b.targets.begin() + (i + 1) * b.T);
  return t;
}

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  // B training sequences of T tokens; a pure function of (seed, step).
  virtual Batch train_batch(int64_t B, int64_t T, uint64_t seed, uint64_t step) const = 0;
  // Validation batch `index` (the same every time it is asked for).
  virtual Batch val_batch(int64_t B, int64_t T, int64_t index) const = 0;
  virtual int64_t num_val_batches(int64_t B, int64_t T) const = 0;
  // Bytes of text per token, to turn nats/token into bits/byte; 1 for synthetic tasks.
  virtual double bytes_per_token() const = 0;
  // Throws a pf::Error naming the flag when batches of B x T cannot be drawn.
  virtual void check_fits(int64_t B, int64_t T) const = 0;
};

}  // namespace pf
