// Tensor: a shaped, strided view onto shared storage. Compute is f32; bf16/f16
// exist as storage dtypes for checkpoints and are converted on load.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace pf {

enum class DType { F32, F16, BF16 };
const char* dtype_name(DType d);
size_t dtype_size(DType d);

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

// 64-byte aligned buffer of bytes, freed when the last view goes away.
struct Storage {
  explicit Storage(size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data = nullptr;
  size_t bytes = 0;
};

class Tensor {
 public:
  Tensor() = default;
  // Contiguous f32 tensor; zero-filled.
  static Tensor zeros(const Shape& shape);
  // Contiguous f32 tensor; contents undefined (use when every element is written).
  static Tensor empty(const Shape& shape);
  static Tensor full(const Shape& shape, float value);
  static Tensor from(const Shape& shape, const std::vector<float>& values);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t d) const;
  int64_t numel() const { return shape_numel(shape_); }
  bool is_contiguous() const;

  float* data() const;  // first element of this view
  float& at(std::initializer_list<int64_t> idx) const;

  // Views (share storage).
  Tensor view(const Shape& shape) const;  // requires contiguous; one dim may be -1
  Tensor transpose(int64_t a, int64_t b) const;
  Tensor slice(int64_t d, int64_t begin, int64_t end) const;  // [begin, end) along d
  Tensor select(int64_t d, int64_t i) const;                  // drops dim d

  // Copies.
  Tensor contiguous() const;
  Tensor clone() const;
  void copy_from(const Tensor& src) const;  // same shape, any strides
  void fill(float v) const;
  void zero() const { fill(0.0f); }
  std::vector<float> to_vector() const;

 private:
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  Shape strides_;
  int64_t offset_ = 0;  // in elements
};

Shape contiguous_strides(const Shape& shape);

// Index of the first NaN or infinity in t (any strides), or -1 when all are finite.
int64_t first_nonfinite(const Tensor& t);

}  // namespace pf
