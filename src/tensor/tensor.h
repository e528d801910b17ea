// Tensor: a shaped, strided view onto shared storage. Compute is f32. F16 and I8 exist as
// checkpoint storage dtypes; BF16 and Q8 also as compact linear-layer weights, which the
// matrix-product kernels read directly (tensor/quantize.h makes them).
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace pf {

// Q8: int8 values with one f32 scale per `group` consecutive elements of a row (the scales
// follow the values in the same storage); value = scale * q.
enum class DType { F32, F16, BF16, I8, Q8 };
const char* dtype_name(DType d);
size_t dtype_size(DType d);  // bytes per element (Q8: the int8 value only)

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
  // Contiguous tensor of any dtype, contents undefined. Q8 needs a group that divides the
  // last dim; its scales (numel / group floats) are allocated alongside.
  static Tensor empty_typed(const Shape& shape, DType dtype, int64_t group = 0);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t d) const;
  int64_t numel() const { return shape_numel(shape_); }
  bool is_contiguous() const;

  DType dtype() const { return dtype_; }
  int64_t group() const { return group_; }  // Q8 only
  float* data() const;                      // first element of this view; F32 only
  void* raw() const;                        // first element of this view, any dtype
  float* q8_scales() const;                 // Q8: the scale of this view's first group
  // Bytes this view's elements occupy (Q8 includes its scales).
  int64_t nbytes() const;
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
  std::vector<float> to_vector() const;  // any dtype, widened to f32

 private:
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  Shape strides_;
  int64_t offset_ = 0;  // in elements
  DType dtype_ = DType::F32;
  int64_t group_ = 0;       // Q8: elements per scale
  size_t scale_bytes_ = 0;  // Q8: byte offset of the scales in the storage
};

Shape contiguous_strides(const Shape& shape);

// Index of the first NaN or infinity in t (any strides), or -1 when all are finite.
int64_t first_nonfinite(const Tensor& t);

}  // namespace pf
