// Configs for `compare`: every architecture built at (nearly) the same parameter count.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace pf::cli {

struct SizedArch {
  std::string label;  // transformer | mamba | mamba2 | retnet | hybrid | perceiver-ar
  nlohmann::json config;
  int64_t params = 0;
  std::string summary;  // "d_model 192, 8 layers, ..." for the config table
};

// The architectures `compare` knows, in report order.
std::vector<std::string> compare_arch_labels();

// A config of `label` with a parameter count as close to `budget` as its shape allows:
// d_model in steps of 8 (16 for mamba2) at `depth` layers (twice that for the Mamba-style
// stacks, which have no MLP), then the MLP width for attention and retention. Errors when
// nothing lands within 5%. Perceiver AR reads windows of `window` tokens (0: max_context)
// with `latents` latents (0: a quarter of the window); it slides past them when decoding.
SizedArch size_arch(const std::string& label, int64_t budget, int64_t depth, int64_t vocab,
                    int64_t max_context, int64_t window = 0, int64_t latents = 0);

// Steps an architecture takes for each compare step so that it trains on as many tokens with
// a loss as the others: seq / latents for Perceiver AR (which scores only its latents), else 1.
int64_t loss_step_factor(const SizedArch& arch, int64_t seq);

}  // namespace pf::cli
