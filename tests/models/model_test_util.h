// Shared helpers for model tests: tiny configs, temp directories, the default corpus.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

namespace pf::test {

inline nlohmann::json tiny_llama_config(int64_t kv_heads = 2, bool tied = true) {
  return {{"model_type", "llama"},      {"hidden_size", 32},
          {"intermediate_size", 48},    {"num_hidden_layers", 2},
          {"num_attention_heads", 4},   {"num_key_value_heads", kv_heads},
          {"vocab_size", 256},          {"max_position_embeddings", 128},
          {"rms_norm_eps", 1e-5},       {"rope_theta", 10000.0},
          {"tie_word_embeddings", tied}};
}

// A fresh empty directory under the system temp dir, removed at scope exit.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("pf_test_" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string str() const { return path_.string(); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// data/kjv.txt, made by scripts/setup.sh.
inline std::string default_corpus() {
  std::string p = std::string(PF_SOURCE_DIR) + "/data/kjv.txt";
  if (!std::filesystem::exists(p)) ADD_FAILURE() << p << " is missing: run scripts/setup.sh";
  return p;
}

}  // namespace pf::test
