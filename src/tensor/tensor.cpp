#include "tensor/tensor.h"

#include <malloc.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <sstream>

#include "base/error.h"
#include "tensor/dtype_convert.h"

namespace pf {

const char* dtype_name(DType d) {
  switch (d) {
    case DType::F32:
      return "F32";
    case DType::F16:
      return "F16";
    case DType::BF16:
      return "BF16";
    case DType::I8:
      return "I8";
    case DType::Q8:
      return "Q8";
  }
  return "?";
}

size_t dtype_size(DType d) {
  switch (d) {
    case DType::F32:
      return 4;
    case DType::F16:
    case DType::BF16:
      return 2;
    case DType::I8:
    case DType::Q8:
      return 1;
  }
  return 4;
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t v : s) n *= v;
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape st(shape.size());
  int64_t acc = 1;
  for (int64_t i = static_cast<int64_t>(shape.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= shape[i];
  }
  return st;
}

namespace {
// Activations are freed and reallocated with the same sizes every step. Keeping them
// on the heap (not fresh mmaps) avoids the kernel zeroing new pages each time.
const bool g_malloc_tuned = [] {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  return true;
}();
}  // namespace

Storage::Storage(size_t n) : bytes(n) {
  size_t rounded = ((n + 63) / 64) * 64;
  data = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
  PF_CHECK(data != nullptr, "out of memory allocating ", n, " bytes (", n >> 20, " MiB)");
}

Storage::~Storage() { std::free(data); }

Tensor Tensor::empty(const Shape& shape) { return empty_typed(shape, DType::F32); }

Tensor Tensor::empty_typed(const Shape& shape, DType dtype, int64_t group) {
  // Checked: a wrapped element count would allocate a small buffer and write past it.
  int64_t n = 1;
  for (int64_t v : shape) {
    PF_CHECK(v >= 0, "negative dimension in shape ", shape_str(shape));
    PF_CHECK(v == 0 || n <= (std::numeric_limits<int64_t>::max() / 8) / v, "shape ",
             shape_str(shape), " is too large to allocate");
    n *= v;
  }
  Tensor t;
  size_t bytes = static_cast<size_t>(n) * dtype_size(dtype);
  if (dtype == DType::Q8) {
    PF_CHECK(!shape.empty() && group > 0 && shape.back() % group == 0, "Q8 tensor ",
             shape_str(shape), ": group ", group, " does not divide the last dimension");
    t.group_ = group;
    t.scale_bytes_ = (bytes + 63) / 64 * 64;  // scales start on a cache line
    bytes = t.scale_bytes_ + static_cast<size_t>(n / group) * sizeof(float);
  }
  t.storage_ = std::make_shared<Storage>(bytes);
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::zeros(const Shape& shape) {
  Tensor t = empty(shape);
  std::memset(t.data(), 0, t.numel() * sizeof(float));
  return t;
}

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = empty(shape);
  t.fill(value);
  return t;
}

Tensor Tensor::from(const Shape& shape, const std::vector<float>& values) {
  PF_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape),
           "Tensor::from: ", values.size(), " values for shape ", shape_str(shape));
  Tensor t = empty(shape);
  std::memcpy(t.data(), values.data(), values.size() * sizeof(float));
  return t;
}

int64_t Tensor::size(int64_t d) const {
  if (d < 0) d += dim();
  PF_CHECK(d >= 0 && d < dim(), "dimension ", d, " out of range for shape ", shape_str(shape_));
  return shape_[d];
}

bool Tensor::is_contiguous() const { return strides_ == contiguous_strides(shape_); }

float* Tensor::data() const {
  PF_CHECK(dtype_ == DType::F32, "this operation needs f32 values, but the tensor ",
           shape_str(shape_), " holds ", dtype_name(dtype_));
  return static_cast<float*>(storage_->data) + offset_;
}

void* Tensor::raw() const {
  return static_cast<char*>(storage_->data) + offset_ * static_cast<int64_t>(dtype_size(dtype_));
}

float* Tensor::q8_scales() const {
  PF_CHECK(dtype_ == DType::Q8, "q8_scales(): tensor holds ", dtype_name(dtype_));
  // Views of a Q8 tensor are whole rows (slice() checks), so offset_ is a multiple of group_.
  return reinterpret_cast<float*>(static_cast<char*>(storage_->data) + scale_bytes_) +
         offset_ / group_;
}

int64_t Tensor::nbytes() const {
  const int64_t n = numel();
  return n * static_cast<int64_t>(dtype_size(dtype_)) +
         (dtype_ == DType::Q8 ? n / group_ * 4 : 0);
}

float& Tensor::at(std::initializer_list<int64_t> idx) const {
  PF_CHECK(static_cast<int64_t>(idx.size()) == dim(), "at(): wrong number of indices");
  int64_t off = 0, d = 0;
  for (int64_t i : idx) {
    PF_CHECK(i >= 0 && i < shape_[d], "at(): index out of range");
    off += i * strides_[d++];
  }
  return data()[off];
}

Tensor Tensor::view(const Shape& shape) const {
  PF_CHECK(is_contiguous(), "view() needs a contiguous tensor");
  Shape s = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      PF_CHECK(infer < 0, "view(): more than one -1");
      infer = static_cast<int64_t>(i);
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) s[infer] = known ? numel() / known : 0;
  PF_CHECK(shape_numel(s) == numel(), "view(): cannot view ", shape_str(shape_), " as ",
           shape_str(shape));
  Tensor t = *this;
  t.shape_ = s;
  t.strides_ = contiguous_strides(s);
  return t;
}

Tensor Tensor::transpose(int64_t a, int64_t b) const {
  Tensor t = *this;
  std::swap(t.shape_.at(a), t.shape_.at(b));
  std::swap(t.strides_.at(a), t.strides_.at(b));
  return t;
}

Tensor Tensor::slice(int64_t d, int64_t begin, int64_t end) const {
  PF_CHECK(d >= 0 && d < dim() && begin >= 0 && begin <= end && end <= shape_[d],
           "slice(): bad range [", begin, ", ", end, ") on dim ", d, " of ", shape_str(shape_));
  PF_CHECK(dtype_ != DType::Q8 || (d == 0 && is_contiguous()),
           "slice(): a Q8 tensor can only be sliced along its first dimension");
  Tensor t = *this;
  t.offset_ += begin * strides_[d];
  t.shape_[d] = end - begin;
  return t;
}

Tensor Tensor::select(int64_t d, int64_t i) const {
  Tensor t = slice(d, i, i + 1);
  t.shape_.erase(t.shape_.begin() + d);
  t.strides_.erase(t.strides_.begin() + d);
  return t;
}

namespace {
// Calls f(dst_offset_in_contiguous, src_offset) over all elements of a strided view.
template <typename F>
void for_each_index(const Shape& shape, const Shape& strides, F f) {
  const int64_t n = shape_numel(shape);
  if (n == 0) return;
  std::vector<int64_t> idx(shape.size(), 0);
  int64_t off = 0;
  for (int64_t lin = 0; lin < n; ++lin) {
    f(lin, off);
    for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
      if (++idx[d] < shape[d]) {
        off += strides[d];
        break;
      }
      off -= (shape[d] - 1) * strides[d];
      idx[d] = 0;
    }
  }
}
}  // namespace

void Tensor::copy_from(const Tensor& src) const {
  PF_CHECK(src.shape_ == shape_, "copy_from(): shape ", shape_str(src.shape_), " into ",
           shape_str(shape_));
  if (dtype_ != DType::F32 || src.dtype_ != DType::F32) {
    // Compact dtypes are copied as they are (no conversion), whole and contiguous.
    PF_CHECK(src.dtype_ == dtype_ && src.group_ == group_ && is_contiguous() &&
                 src.is_contiguous(),
             "copy_from(): ", dtype_name(src.dtype_), " into ", dtype_name(dtype_),
             " needs the same dtype and contiguous tensors");
    std::memmove(raw(), src.raw(), numel() * dtype_size(dtype_));
    if (dtype_ == DType::Q8)
      std::memmove(q8_scales(), src.q8_scales(), numel() / group_ * sizeof(float));
    return;
  }
  if (is_contiguous() && src.is_contiguous()) {
    std::memmove(data(), src.data(), numel() * sizeof(float));
    return;
  }
  std::vector<float> tmp = src.to_vector();
  float* base = data();
  for_each_index(shape_, strides_, [&](int64_t lin, int64_t off) { base[off] = tmp[lin]; });
}

void Tensor::fill(float v) const {
  float* base = data();
  for_each_index(shape_, strides_, [&](int64_t, int64_t off) { base[off] = v; });
}

std::vector<float> Tensor::to_vector() const {
  std::vector<float> out(numel());
  if (dtype_ != DType::F32) {
    PF_CHECK(is_contiguous(), "to_vector(): a ", dtype_name(dtype_), " tensor must be contiguous");
    const int64_t n = numel();
    const void* p = raw();
    for (int64_t i = 0; i < n; ++i) {
      switch (dtype_) {
        case DType::F16:
          out[i] = f16_to_f32(static_cast<const uint16_t*>(p)[i]);
          break;
        case DType::BF16:
          out[i] = bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
          break;
        case DType::I8:
          out[i] = static_cast<const int8_t*>(p)[i];
          break;
        default:  // Q8
          out[i] = q8_scales()[i / group_] * static_cast<const int8_t*>(p)[i];
      }
    }
    return out;
  }
  const float* base = data();
  if (is_contiguous()) {
    if (!out.empty()) std::memcpy(out.data(), base, out.size() * sizeof(float));
  } else {
    for_each_index(shape_, strides_, [&](int64_t lin, int64_t off) { out[lin] = base[off]; });
  }
  return out;
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  Tensor t = empty_typed(shape_, dtype_, group_);
  t.copy_from(*this);
  return t;
}

}  // namespace pf

namespace pf {

int64_t first_nonfinite(const Tensor& t) {
  const Tensor c = t.contiguous();
  const float* p = c.data();
  const int64_t n = c.numel();
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i])) return i;
  return -1;
}

}  // namespace pf
