#include "io/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "tensor/dtype_convert.h"

namespace pf {

namespace {
using nlohmann::json;

// Limits that no real file reaches; a count past them is a corrupt header, refused before
// anything is allocated for it.
constexpr uint64_t kMaxTensors = 1 << 20, kMaxKeys = 1 << 20, kMaxDims = 4;
constexpr uint64_t kQ8Block = 32, kQ8BlockBytes = 34;  // f16 scale + 32 int8

// Value types of GGUF metadata.
enum : uint32_t {
  kU8 = 0, kI8, kU16, kI16, kU32, kI32, kF32, kBool, kString, kArray, kU64, kI64, kF64
};

// Sequential reads over the mapped header, each checked against the end of the file.
class Cursor {
 public:
  Cursor(const std::string& path, const uint8_t* p, size_t n) : path_(path), p_(p), n_(n) {}
  size_t pos() const { return pos_; }
  template <typename T>
  T get(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }
  std::string str(const char* what) {
    const uint64_t len = get<uint64_t>(what);
    need(len, what);
    std::string s(reinterpret_cast<const char*>(p_ + pos_), len);
    pos_ += len;
    return s;
  }
  void need(uint64_t bytes, const char* what) const {
    if (bytes > n_ - pos_)
      fail(path_, ": truncated at byte ", pos_, " while reading ", what, " (", bytes,
           " bytes needed, ", n_ - pos_, " left)");
  }

 private:
  const std::string& path_;
  const uint8_t* p_;
  size_t n_, pos_ = 0;
};

size_t scalar_size(uint32_t t) {
  switch (t) {
    case kU8: case kI8: case kBool: return 1;
    case kU16: case kI16: return 2;
    case kU32: case kI32: case kF32: return 4;
    case kU64: case kI64: case kF64: return 8;
    default: return 0;
  }
}

json read_scalar(Cursor& c, uint32_t t, const std::string& key) {
  switch (t) {
    case kU8: return c.get<uint8_t>("a u8 value");
    case kI8: return c.get<int8_t>("an i8 value");
    case kU16: return c.get<uint16_t>("a u16 value");
    case kI16: return c.get<int16_t>("an i16 value");
    case kU32: return c.get<uint32_t>("a u32 value");
    case kI32: return c.get<int32_t>("an i32 value");
    case kF32: return c.get<float>("an f32 value");
    case kBool: return c.get<uint8_t>("a bool value") != 0;
    case kU64: return c.get<uint64_t>("a u64 value");
    case kI64: return c.get<int64_t>("an i64 value");
    case kF64: return c.get<double>("an f64 value");
    case kString: return c.str("a string value");
    default: fail("metadata key '", key, "' has unknown value type ", t);
  }
}

json read_value(Cursor& c, uint32_t t, const std::string& key, const std::string& path) {
  if (t != kArray) return read_scalar(c, t, key);
  const uint32_t et = c.get<uint32_t>("an array's element type");
  const uint64_t n = c.get<uint64_t>("an array's length");
  PF_CHECK(et != kArray, path, ": metadata key '", key, "' is an array of arrays (not supported)");
  PF_CHECK(et == kString || scalar_size(et) > 0, path, ": metadata key '", key,
           "' is an array of unknown value type ", et);
  // Each element takes at least one byte (a string at least its 8-byte length).
  c.need(n * (et == kString ? 8 : scalar_size(et)), "an array");
  json a = json::array();
  a.get_ref<json::array_t&>().reserve(n);
  for (uint64_t i = 0; i < n; ++i) a.push_back(read_scalar(c, et, key));
  return a;
}

uint64_t type_bytes(uint32_t type, uint64_t elements, uint64_t row, const std::string& path,
                    const std::string& name) {
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::F32: return elements * 4;
    case GgmlType::F16:
    case GgmlType::BF16: return elements * 2;
    case GgmlType::Q8_0:
      PF_CHECK(row % kQ8Block == 0, path, ": tensor '", name, "' is Q8_0 with rows of ", row,
               " values, not a multiple of the block size 32");
      return elements / kQ8Block * kQ8BlockBytes;
  }
  fail(path, ": tensor '", name, "' is ", ggml_type_name(type),
       "; supported are F32, F16, BF16 and Q8_0 (requantise with llama-quantize)");
}
}  // namespace

std::string ggml_type_name(uint32_t type) {
  static const char* names[] = {"F32",  "F16",  "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0",
                                "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
                                "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S",
                                "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32",
                                "I64", "F64", "IQ1_M", "BF16"};
  if (type < sizeof names / sizeof names[0]) return names[type];
  return "type " + std::to_string(type);
}

GgufFile::GgufFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) fail(path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  const bool ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  if (!ok) {
    ::close(fd);
    fail(path, ": not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ < 24) {
    ::close(fd);
    fail(path, ": ", size_, " bytes, too short for a GGUF header (24 bytes)");
  }
  void* m = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  const int saved = errno;
  ::close(fd);
  if (m == MAP_FAILED) fail(path, ": cannot mmap: ", std::strerror(saved));
  base_ = static_cast<const uint8_t*>(m);
  try {
    Cursor c(path_, base_, size_);
    PF_CHECK(std::memcmp(base_, "GGUF", 4) == 0, path_,
             ": not a GGUF file (the first bytes are not \"GGUF\")");
    c.get<uint32_t>("the magic");
    version_ = c.get<uint32_t>("the version");
    PF_CHECK(version_ == 2 || version_ == 3, path_, ": GGUF version ", version_,
             " (supported: 2 and 3)");
    const uint64_t n_tensors = c.get<uint64_t>("the tensor count");
    const uint64_t n_keys = c.get<uint64_t>("the metadata count");
    PF_CHECK(n_tensors <= kMaxTensors && n_keys <= kMaxKeys, path_, ": header claims ",
             n_tensors, " tensors and ", n_keys, " metadata keys (corrupt header)");
    for (uint64_t i = 0; i < n_keys; ++i) {
      const std::string key = c.str("a metadata key");
      const uint32_t t = c.get<uint32_t>("a value type");
      try {
        meta_[key] = read_value(c, t, key, path_);
      } catch (const Error& e) {
        const std::string msg = e.what();
        if (msg.rfind(path_, 0) == 0) throw;
        fail(path_, ": ", msg);
      }
    }
    for (uint64_t i = 0; i < n_tensors; ++i) {
      GgufTensorInfo t;
      t.name = c.str("a tensor name");
      const uint32_t dims = c.get<uint32_t>("a tensor's dimension count");
      PF_CHECK(dims >= 1 && dims <= kMaxDims, path_, ": tensor '", t.name, "' has ", dims,
               " dimensions (1 to 4 allowed)");
      uint64_t elements = 1;
      std::vector<int64_t> ne(dims);
      for (uint32_t d = 0; d < dims; ++d) {
        const uint64_t n = c.get<uint64_t>("a tensor dimension");
        PF_CHECK(n >= 1 && n <= (uint64_t{1} << 40) && elements <= (uint64_t{1} << 40) / n,
                 path_, ": tensor '", t.name, "' has an impossible dimension ", n);
        elements *= n;
        ne[d] = static_cast<int64_t>(n);
      }
      t.shape.assign(ne.rbegin(), ne.rend());
      t.type = c.get<uint32_t>("a tensor type");
      t.offset = c.get<uint64_t>("a tensor offset");
      t.nbytes = type_bytes(t.type, elements, static_cast<uint64_t>(ne[0]), path_, t.name);
      PF_CHECK(index_.emplace(t.name, tensors_.size()).second, path_, ": tensor '", t.name,
               "' appears twice");
      tensors_.push_back(std::move(t));
    }
    const uint64_t align = has_key("general.alignment") ? int_at("general.alignment") : 32;
    PF_CHECK(align >= 1 && align <= 65536 && (align & (align - 1)) == 0, path_,
             ": general.alignment ", align, " is not a power of two");
    data_start_ = (c.pos() + align - 1) / align * align;
    PF_CHECK(data_start_ <= size_, path_, ": truncated before the tensor data");
    const uint64_t data_size = size_ - data_start_;
    for (const GgufTensorInfo& t : tensors_) {
      PF_CHECK(t.offset % align == 0, path_, ": tensor '", t.name, "' at offset ", t.offset,
               " is not aligned to ", align);
      PF_CHECK(t.offset <= data_size && t.nbytes <= data_size - t.offset, path_, ": tensor '",
               t.name, "' (", t.nbytes, " bytes at offset ", t.offset,
               ") runs past the end of the file (truncated?)");
    }
  } catch (...) {
    ::munmap(const_cast<uint8_t*>(base_), size_);
    base_ = nullptr;
    throw;
  }
}

GgufFile::~GgufFile() {
  if (base_ != nullptr) ::munmap(const_cast<uint8_t*>(base_), size_);
}

const json& GgufFile::at(const std::string& key) const {
  auto it = meta_.find(key);
  PF_CHECK(it != meta_.end(), path_, ": no metadata key '", key, "'");
  return *it;
}

int64_t GgufFile::int_at(const std::string& key) const {
  const json& v = at(key);
  PF_CHECK(v.is_number_integer(), path_, ": metadata key '", key, "' is ", v.dump(),
           ", not an integer");
  PF_CHECK(!v.is_number_unsigned() || v.get<uint64_t>() <= (uint64_t{1} << 62), path_,
           ": metadata key '", key, "' is out of range: ", v.dump());
  return v.get<int64_t>();
}

int64_t GgufFile::int_or(const std::string& key, int64_t fallback) const {
  return has_key(key) ? int_at(key) : fallback;
}

double GgufFile::float_or(const std::string& key, double fallback) const {
  if (!has_key(key)) return fallback;
  const json& v = at(key);
  PF_CHECK(v.is_number(), path_, ": metadata key '", key, "' is ", v.dump(), ", not a number");
  return v.get<double>();
}

std::string GgufFile::string_or(const std::string& key, const std::string& fallback) const {
  if (!has_key(key)) return fallback;
  const json& v = at(key);
  PF_CHECK(v.is_string(), path_, ": metadata key '", key, "' is not a string");
  return v.get<std::string>();
}

const GgufTensorInfo& GgufFile::info(const std::string& name) const {
  auto it = index_.find(name);
  PF_CHECK(it != index_.end(), path_, ": no tensor '", name, "'");
  return tensors_[it->second];
}

Tensor GgufFile::load_f32(const std::string& name) const {
  const GgufTensorInfo& t = info(name);
  Tensor out = Tensor::empty(t.shape);
  float* o = out.data();
  const uint8_t* src = data_of(t);
  const int64_t n = out.numel();
  switch (static_cast<GgmlType>(t.type)) {
    case GgmlType::F32:
      std::memcpy(o, src, n * sizeof(float));
      break;
    case GgmlType::F16:
    case GgmlType::BF16: {
      const bool bf = t.type == static_cast<uint32_t>(GgmlType::BF16);
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        o[i] = bf ? bf16_to_f32(h) : f16_to_f32(h);
      }
      break;
    }
    case GgmlType::Q8_0:
      for (int64_t b = 0; b < n / static_cast<int64_t>(kQ8Block); ++b) {
        const uint8_t* blk = src + b * kQ8BlockBytes;
        uint16_t h;
        std::memcpy(&h, blk, 2);
        const float d = f16_to_f32(h);
        for (uint64_t i = 0; i < kQ8Block; ++i)
          o[b * kQ8Block + i] = d * static_cast<float>(static_cast<int8_t>(blk[2 + i]));
      }
      break;
  }
  for (int64_t i = 0; i < n; ++i)
    PF_CHECK(std::isfinite(o[i]), path_, ": tensor '", name, "' holds ", o[i], " at element ", i,
             " (weights must be finite)");
  return out;
}

Tensor GgufFile::load_compact(const std::string& name) const {
  const GgufTensorInfo& t = info(name);
  const uint8_t* src = data_of(t);
  if (t.type == static_cast<uint32_t>(GgmlType::BF16)) {
    Tensor out = Tensor::empty_typed(t.shape, DType::BF16);
    std::memcpy(out.raw(), src, t.nbytes);
    load_f32(name);  // the finiteness check
    return out;
  }
  if (t.type != static_cast<uint32_t>(GgmlType::Q8_0) || t.shape.size() != 2)
    return load_f32(name);
  Tensor out = Tensor::empty_typed(t.shape, DType::Q8, kQ8Block);
  int8_t* q = static_cast<int8_t*>(out.raw());
  float* s = out.q8_scales();
  for (int64_t b = 0; b < out.numel() / static_cast<int64_t>(kQ8Block); ++b) {
    const uint8_t* blk = src + b * kQ8BlockBytes;
    uint16_t h;
    std::memcpy(&h, blk, 2);
    s[b] = f16_to_f32(h);
    PF_CHECK(std::isfinite(s[b]), path_, ": tensor '", name, "' block ", b, " has scale ", s[b]);
    std::memcpy(q + b * kQ8Block, blk + 2, kQ8Block);
  }
  return out;
}

}  // namespace pf
