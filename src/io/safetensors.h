// Safetensors checkpoints: 8-byte little-endian header length N, N bytes of JSON
// ({"name": {"dtype", "shape", "data_offsets"}, "__metadata__": {...}}), then raw data.
// Reading maps the file and validates every header entry up front, so a bad file fails
// once with a message naming the path and the problem instead of at first use.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace pf {

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  size_t begin = 0, end = 0;  // byte offsets relative to the data section
};

// Read-only view of a safetensors file through mmap.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;  // throws "PATH: missing tensor 'NAME'"
  std::vector<std::string> names() const;                 // sorted
  Tensor load_f32(const std::string& name) const;         // F16/BF16 are widened to f32
  // Same, but first checks the stored shape equals `expected`.
  Tensor load_f32(const std::string& name, const Shape& expected) const;
  // The tensor in its stored dtype (F32, F16, BF16 or I8), unconverted.
  Tensor load_raw(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  void parse_header(uint64_t header_len);

  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  const unsigned char* data_ = nullptr;  // start of the data section
  size_t data_size_ = 0;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Writes `tensors` (any strides; f32 ones converted to `dtype`, BF16/F16/I8 ones written as
// they are; Q8 must be split into I8 values and F32 scales first) in the given order, packed
// contiguously after a header padded so the data starts 8-byte aligned. Atomic: see
// write_file_atomic.
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {},
                       DType dtype = DType::F32);

}  // namespace pf
