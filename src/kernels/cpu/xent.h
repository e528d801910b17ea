// Fused softmax + cross-entropy over rows of logits.
#pragma once
#include <cstdint>

namespace pf::cpu {

// logits: (rows, vocab); targets: (rows), a negative target means "no loss here".
// Writes each row's log-sum-exp to lse (rows) and returns the summed loss (nats);
// *count receives the number of rows that carry a loss.
double xent_fwd(int64_t rows, int64_t vocab, const float* logits, const int32_t* targets,
                float* lse, int64_t* count);
// dlogits += scale * (softmax(logits) - onehot(target)) for rows with a target.
void xent_bwd(int64_t rows, int64_t vocab, const float* logits, const int32_t* targets,
              const float* lse, float scale, float* dlogits);
// Row-wise log-softmax (for sampling and per-token log-probabilities).
void log_softmax(int64_t rows, int64_t vocab, const float* logits, float* out);

}  // namespace pf::cpu
