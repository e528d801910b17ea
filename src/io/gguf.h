// llama.cpp's GGUF files (versions 2 and 3): the metadata key-value pairs and the tensors,
// read through a read-only mapping of the file. Tensors in F32, F16, BF16 and Q8_0 load;
// every other ggml type, and every structural fault (truncation, overlapping or misaligned
// data, absurd counts), is an error naming the file and what is wrong.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace pf {

// ggml tensor types that load (the numbers are ggml's).
enum class GgmlType : uint32_t { F32 = 0, F16 = 1, Q8_0 = 8, BF16 = 30 };
std::string ggml_type_name(uint32_t type);  // "Q4_K" etc., or "type N" when unknown

struct GgufTensorInfo {
  std::string name;
  Shape shape;  // outermost first, as PyTorch writes it (GGUF's ne[] reversed)
  uint32_t type = 0;
  uint64_t offset = 0;  // from the start of the data section
  uint64_t nbytes = 0;
};

class GgufFile {
 public:
  explicit GgufFile(const std::string& path);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  // Metadata: numbers, bools and strings as JSON scalars, arrays as JSON arrays.
  const nlohmann::json& metadata() const { return meta_; }
  bool has_key(const std::string& key) const { return meta_.contains(key); }
  // A required key; errors name the key and the file. int_at checks it is an integer.
  const nlohmann::json& at(const std::string& key) const;
  int64_t int_at(const std::string& key) const;
  int64_t int_or(const std::string& key, int64_t fallback) const;
  double float_or(const std::string& key, double fallback) const;
  std::string string_or(const std::string& key, const std::string& fallback) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  bool has(const std::string& name) const { return index_.count(name) != 0; }
  const GgufTensorInfo& info(const std::string& name) const;  // "PATH: no tensor 'NAME'"
  // The tensor widened to f32, in PyTorch's shape.
  Tensor load_f32(const std::string& name) const;
  // As stored where our compact dtypes hold it exactly: BF16 stays BF16, Q8_0 (2-D) becomes
  // Q8 with group 32 and the block scales widened from f16; F32 and F16 give f32.
  Tensor load_compact(const std::string& name) const;

 private:
  std::string path_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  size_t data_start_ = 0;
  nlohmann::json meta_ = nlohmann::json::object();
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  const uint8_t* data_of(const GgufTensorInfo& t) const { return base_ + data_start_ + t.offset; }
};

}  // namespace pf
