// Sane bounds for model sizes read from configs and flags: far above any published model,
// low enough that products of them cannot overflow 64 bits.
#pragma once
#include <cstdint>

namespace pf {

constexpr int64_t kMaxWidth = int64_t{1} << 16;      // hidden size
constexpr int64_t kMaxFfn = int64_t{1} << 20;        // MLP hidden size
constexpr int64_t kMaxLayers = int64_t{1} << 12;     // blocks
constexpr int64_t kMaxVocab = int64_t{1} << 24;      // vocabulary entries
constexpr int64_t kMaxPositions = int64_t{1} << 24;  // context length

}  // namespace pf
