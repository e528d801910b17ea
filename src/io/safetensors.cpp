#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "base/error.h"
#include "io/atomic_file.h"
#include "io/config_json.h"
#include "tensor/dtype_convert.h"

namespace pf {

// Data is copied byte-for-byte between the file (little-endian) and memory.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes little-endian");

namespace {

using json = nlohmann::json;

bool parse_dtype(const std::string& s, DType* out) {
  if (s == "F32")
    *out = DType::F32;
  else if (s == "F16")
    *out = DType::F16;
  else if (s == "BF16")
    *out = DType::BF16;
  else if (s == "I8")
    *out = DType::I8;
  else
    return false;
  return true;
}

// A JSON integer in [0, 2^63); anything else (negative, fractional, huge) is rejected.
bool as_index(const json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return *out <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(v.get<int64_t>());
    return true;
  }
  return false;
}

// Scratch buffer size (elements) for converting tensors to 16-bit dtypes while writing.
constexpr size_t kChunk = 1 << 16;

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  // O_NONBLOCK: a FIFO must be refused, not waited on.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) fail(path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int saved = errno;
    ::close(fd);
    fail(path, ": cannot stat: ", std::strerror(saved));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, ": not a regular file");
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    fail(path, ": file is ", size, " bytes, too short for a safetensors header (needs 8)");
  }
  void* m = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int saved = errno;
  ::close(fd);  // the mapping stays valid without the descriptor
  if (m == MAP_FAILED) fail(path, ": cannot mmap: ", std::strerror(saved));
  map_ = m;
  map_size_ = size;
  // The destructor does not run if the constructor throws, so unmap here.
  try {
    uint64_t header_len;
    std::memcpy(&header_len, map_, 8);
    if (header_len > size - 8)
      fail(path, ": header length ", header_len, " exceeds file size ", size);
    // The format caps the header at 100 MB so a reader never parses an unbounded one.
    if (header_len > (uint64_t{100} << 20))
      fail(path, ": header length ", header_len, " exceeds the format's 100 MB limit");
    parse_header(header_len);
  } catch (...) {
    ::munmap(map_, map_size_);
    map_ = nullptr;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(map_, map_size_);
}

void SafetensorsFile::parse_header(uint64_t header_len) {
  const char* base = static_cast<const char*>(map_);
  data_ = reinterpret_cast<const unsigned char*>(base) + 8 + header_len;
  data_size_ = map_size_ - 8 - header_len;

  const json header = parse_json(base + 8, base + 8 + header_len, path_ + ": header", 8);
  if (!header.is_object()) fail(path_, ": header is not a JSON object");

  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) fail(path_, ": __metadata__ is not a JSON object");
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) fail(path_, ": metadata value for '", k, "' is not a string");
        metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string where = path_ + ": tensor '" + name + "'";
    if (!entry.is_object()) fail(where, ": entry is not a JSON object");
    for (const char* key : {"dtype", "shape", "data_offsets"})
      if (!entry.contains(key)) fail(where, ": missing '", key, "'");

    TensorInfo info;
    info.name = name;
    const json& jd = entry["dtype"];
    if (!jd.is_string()) fail(where, ": dtype is not a string");
    if (!parse_dtype(jd.get<std::string>(), &info.dtype))
      fail(path_, ": unsupported dtype '", jd.get<std::string>(), "' for tensor '", name,
           "' (supported: F32, F16, BF16)");

    const json& js = entry["shape"];
    if (!js.is_array()) fail(where, ": shape is not an array");
    // The product of the non-zero dims must fit (a zero dim does not make [2^62, 4, 0]
    // harmless: strides and element counts are still computed from the others).
    uint64_t nonzero = 1, numel = 1;
    bool too_big = false;
    for (const json& d : js) {
      uint64_t v;
      if (!as_index(d, &v))
        fail(where, ": shape ", js.dump(), " has a negative or non-integer entry");
      info.shape.push_back(static_cast<int64_t>(v));
      if (v == 0) {
        numel = 0;
        continue;
      }
      if (nonzero > (static_cast<uint64_t>(INT64_MAX) / 4) / v)
        too_big = true;
      else
        nonzero *= v;
    }
    if (numel != 0) numel = nonzero;
    const uint64_t elem = dtype_size(info.dtype);
    if (too_big) fail(where, ": shape ", shape_str(info.shape), " is too large");

    const json& jo = entry["data_offsets"];
    uint64_t b, e;
    if (!jo.is_array() || jo.size() != 2 || !as_index(jo[0], &b) || !as_index(jo[1], &e))
      fail(where, ": data_offsets ", jo.dump(), " is not a pair of non-negative integers");
    if (b > e) fail(where, ": data_offsets [", b, ", ", e, "] have begin > end");
    if (e > data_size_)
      fail(where, ": data_offsets [", b, ", ", e, "] out of bounds of the data section (",
           data_size_, " bytes)");
    if (e - b != numel * elem)
      fail(where, ": byte size ", e - b, " does not match shape ", shape_str(info.shape), " ",
           dtype_name(info.dtype), " (expected ", numel * elem, " bytes)");
    info.begin = static_cast<size_t>(b);
    info.end = static_cast<size_t>(e);
    tensors_.emplace(name, std::move(info));
  }
  // The data section must be covered exactly: no two tensors share bytes, none is left over.
  std::vector<const TensorInfo*> order;
  for (const auto& kv : tensors_) order.push_back(&kv.second);
  std::sort(order.begin(), order.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  size_t covered = 0;
  for (const TensorInfo* t : order) {
    if (t->begin < covered)
      fail(path_, ": tensor '", t->name, "' (bytes ", t->begin, "..", t->end,
           ") overlaps the tensor before it");
    if (t->begin > covered)
      fail(path_, ": the data section has a gap of ", t->begin - covered, " bytes before tensor '",
           t->name, "'");
    covered = t->end;
  }
  if (covered != data_size_)
    fail(path_, ": the data section is ", data_size_, " bytes but its tensors cover ", covered,
         " (trailing bytes)");
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) fail(path_, ": missing tensor '", name, "'");
  return it->second;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& kv : tensors_) out.push_back(kv.first);  // std::map keeps them sorted
  return out;
}

Tensor SafetensorsFile::load_f32(const std::string& name) const {
  const TensorInfo& ti = info(name);
  Tensor t = Tensor::empty(ti.shape);
  const unsigned char* src = data_ + ti.begin;
  float* dst = t.data();
  const size_t n = static_cast<size_t>(t.numel());
  // Element-wise memcpy because the data section need not be aligned in foreign files.
  switch (ti.dtype) {
    case DType::F32:
      if (n) std::memcpy(dst, src, n * sizeof(float));
      break;
    case DType::F16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = f16_to_f32(h);
      }
      break;
    case DType::BF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = bf16_to_f32(h);
      }
      break;
    case DType::I8:
      for (size_t i = 0; i < n; ++i) dst[i] = static_cast<int8_t>(src[i]);
      break;
    case DType::Q8:  // never a stored dtype (parse_dtype has no name for it)
      fail(path_, ": tensor '", name, "' has no stored dtype");
  }
  return t;
}

Tensor SafetensorsFile::load_raw(const std::string& name) const {
  const TensorInfo& ti = info(name);
  Tensor t = Tensor::empty_typed(ti.shape, ti.dtype);
  if (ti.end > ti.begin) std::memcpy(t.raw(), data_ + ti.begin, ti.end - ti.begin);
  return t;
}

Tensor SafetensorsFile::load_f32(const std::string& name, const Shape& expected) const {
  const TensorInfo& ti = info(name);
  if (ti.shape != expected)
    fail(path_, ": tensor '", name, "' has shape ", shape_str(ti.shape), ", expected ",
         shape_str(expected));
  return load_f32(name);
}

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata, DType dtype) {
  // Tensors already in a compact dtype are written as they are; f32 ones become `dtype`.
  auto stored = [dtype](const Tensor& t) { return t.dtype() == DType::F32 ? dtype : t.dtype(); };
  json header = json::object();
  std::set<std::string> seen;
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__") fail(path, ": '__metadata__' cannot be a tensor name");
    if (!seen.insert(name).second) fail(path, ": duplicate tensor name '", name, "'");
    if (!t.defined()) fail(path, ": tensor '", name, "' is undefined");
    if (t.dtype() == DType::Q8)
      fail(path, ": tensor '", name, "' is Q8: write its int8 values and scales separately");
    const size_t bytes = static_cast<size_t>(t.numel()) * dtype_size(stored(t));
    header[name] = {{"dtype", dtype_name(stored(t))},
                    {"shape", t.shape()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;

  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    fail(path, ": cannot encode header (names and metadata must be UTF-8): ", e.what());
  }
  // Pad so 8 + N is a multiple of 8: the data section then starts aligned.
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t header_len = text.size();

  write_file_atomic(path, [&](std::FILE* f) {
    auto put = [&](const void* p, size_t n) {
      if (n && std::fwrite(p, 1, n, f) != n)
        fail("cannot write ", path, ": write failed: ", std::strerror(errno));
    };
    put(&header_len, 8);
    put(text.data(), text.size());
    std::vector<uint16_t> buf;
    for (const auto& kv : tensors) {
      const Tensor& t = kv.second;
      if (t.dtype() != DType::F32) {
        const Tensor c = t.contiguous();
        put(c.raw(), static_cast<size_t>(c.numel()) * dtype_size(c.dtype()));
        continue;
      }
      if (dtype == DType::F32) {
        if (t.is_contiguous()) {
          put(t.data(), static_cast<size_t>(t.numel()) * sizeof(float));
        } else {
          const std::vector<float> v = t.to_vector();
          put(v.data(), v.size() * sizeof(float));
        }
        continue;
      }
      const Tensor c = t.contiguous();
      const float* src = c.data();
      const size_t n = static_cast<size_t>(c.numel());
      for (size_t i = 0; i < n; i += kChunk) {
        const size_t m = std::min(kChunk, n - i);
        buf.resize(m);
        for (size_t j = 0; j < m; ++j)
          buf[j] = dtype == DType::F16 ? f32_to_f16(src[i + j]) : f32_to_bf16(src[i + j]);
        put(buf.data(), m * sizeof(uint16_t));
      }
    }
  });
}

}  // namespace pf
