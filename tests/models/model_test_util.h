// Shared helpers for model tests: tiny configs, temp directories, the default corpus.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "test_temp_dir.h"

namespace pf::test {

inline nlohmann::json tiny_llama_config(int64_t kv_heads = 2, bool tied = true) {
  return {{"model_type", "llama"},      {"hidden_size", 32},
          {"intermediate_size", 48},    {"num_hidden_layers", 2},
          {"num_attention_heads", 4},   {"num_key_value_heads", kv_heads},
          {"vocab_size", 256},          {"max_position_embeddings", 128},
          {"rms_norm_eps", 1e-5},       {"rope_theta", 10000.0},
          {"tie_word_embeddings", tied}};
}

// data/kjv.txt, made by scripts/setup.sh.
inline std::string default_corpus() {
  std::string p = std::string(PF_SOURCE_DIR) + "/data/kjv.txt";
  if (!std::filesystem::exists(p)) ADD_FAILURE() << p << " is missing: run scripts/setup.sh";
  return p;
}

}  // namespace pf::test
