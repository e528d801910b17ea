// Writes GGUF files for tests, independently of the reader: metadata of any value type and
// tensors encoded as F32, F16, BF16 or Q8_0 the way llama.cpp's gguf-py writes them.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "tensor/dtype_convert.h"

namespace pf::test {

enum GgufType : uint32_t { kGF32 = 0, kGF16 = 1, kGQ8_0 = 8, kGBF16 = 30 };

class GgufWriter {
 public:
  uint32_t version = 3;
  uint64_t alignment = 32;
  std::string magic = "GGUF";

  void u32(const std::string& k, uint32_t v) { key(k, 4), pod(meta_, v); }
  void f32(const std::string& k, float v) { key(k, 6), pod(meta_, v); }
  void boolean(const std::string& k, bool v) { key(k, 7), meta_.push_back(v ? 1 : 0); }
  void str(const std::string& k, const std::string& v) { key(k, 8), string(meta_, v); }
  void strings(const std::string& k, const std::vector<std::string>& v) {
    key(k, 9), pod(meta_, uint32_t{8}), pod(meta_, uint64_t{v.size()});
    for (const std::string& s : v) string(meta_, s);
  }
  void i32s(const std::string& k, const std::vector<int32_t>& v) {
    key(k, 9), pod(meta_, uint32_t{5}), pod(meta_, uint64_t{v.size()});
    for (int32_t x : v) pod(meta_, x);
  }
  void f32s(const std::string& k, const std::vector<float>& v) {
    key(k, 9), pod(meta_, uint32_t{6}), pod(meta_, uint64_t{v.size()});
    for (float x : v) pod(meta_, x);
  }

  // values in row-major order of `shape` (outermost first, as PyTorch).
  void tensor(const std::string& name, const std::vector<int64_t>& shape,
              const std::vector<float>& values, uint32_t type) {
    Entry e{name, shape, type, {}};
    switch (type) {
      case kGF32:
        for (float v : values) pod(e.bytes, v);
        break;
      case kGF16:
        for (float v : values) pod(e.bytes, f32_to_f16(v));
        break;
      case kGBF16:
        for (float v : values) pod(e.bytes, f32_to_bf16(v));
        break;
      case kGQ8_0:
        for (size_t b = 0; b < values.size() / 32; ++b) {
          float amax = 0;
          for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(values[b * 32 + i]));
          const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
          pod(e.bytes, f32_to_f16(d));
          for (int i = 0; i < 32; ++i)
            e.bytes.push_back(static_cast<char>(static_cast<int8_t>(std::lround(values[b * 32 + i] * id))));
        }
        break;
      default:  // an unsupported type: bytes for a 1-byte-per-element guess
        e.bytes.assign(values.size(), '\0');
    }
    tensors_.push_back(std::move(e));
  }
  // The values a tensor of `type` decodes to (what a reader must give back).
  static std::vector<float> rounded(const std::vector<float>& v, uint32_t type) {
    std::vector<float> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      if (type == kGF16) out[i] = f16_to_f32(f32_to_f16(v[i]));
      else if (type == kGBF16) out[i] = bf16_to_f32(f32_to_bf16(v[i]));
      else out[i] = v[i];
    }
    if (type == kGQ8_0)
      for (size_t b = 0; b < v.size() / 32; ++b) {
        float amax = 0;
        for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(v[b * 32 + i]));
        const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f, dh = f16_to_f32(f32_to_f16(d));
        for (int i = 0; i < 32; ++i) out[b * 32 + i] = dh * std::lround(v[b * 32 + i] * id);
      }
    return out;
  }
  void drop(const std::string& name) {
    std::erase_if(tensors_, [&](const Entry& e) { return e.name == name; });
  }
  // Fault injection: the tensor's stored offset gets `extra` added.
  void shift_offset(const std::string& name, uint64_t extra) {
    for (Entry& e : tensors_)
      if (e.name == name) e.offset_extra = extra;
  }
  void set_type(const std::string& name, uint32_t type) {
    for (Entry& e : tensors_)
      if (e.name == name) e.type = type;
  }

  std::string bytes() const {
    std::string out = magic.substr(0, 4);
    pod(out, version);
    pod(out, uint64_t{tensors_.size()});
    pod(out, n_keys_);
    out += meta_;
    std::vector<uint64_t> offsets;
    uint64_t off = 0;
    for (const Entry& e : tensors_) {
      offsets.push_back(off);
      off = (off + e.bytes.size() + alignment - 1) / alignment * alignment;
    }
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const Entry& e = tensors_[i];
      string(out, e.name);
      pod(out, static_cast<uint32_t>(e.shape.size()));
      for (size_t d = e.shape.size(); d-- > 0;) pod(out, static_cast<uint64_t>(e.shape[d]));
      pod(out, e.type);
      pod(out, offsets[i] + e.offset_extra);
    }
    out.resize((out.size() + alignment - 1) / alignment * alignment, '\0');
    for (size_t i = 0; i < tensors_.size(); ++i) {
      out += tensors_[i].bytes;
      out.resize((out.size() + alignment - 1) / alignment * alignment, '\0');
    }
    return out;
  }
  void write(const std::string& path) const {
    std::ofstream(path, std::ios::binary) << bytes();
  }

 private:
  struct Entry {
    std::string name;
    std::vector<int64_t> shape;
    uint32_t type;
    std::string bytes;
    uint64_t offset_extra = 0;
  };
  std::string meta_;
  uint64_t n_keys_ = 0;
  std::vector<Entry> tensors_;

  template <typename T>
  static void pod(std::string& out, T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof v);
    out.append(b, sizeof v);
  }
  static void string(std::string& out, const std::string& s) {
    pod(out, uint64_t{s.size()});
    out += s;
  }
  void key(const std::string& k, uint32_t type) {
    ++n_keys_;
    string(meta_, k);
    pod(meta_, type);
  }
};

}  // namespace pf::test
