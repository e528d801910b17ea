#include "data/idx_file.h"

#include <cstdio>

#include "base/error.h"
#include "io/gzip.h"
#include "io/read_file.h"

namespace pf {

int64_t IdxArray::item_size() const {
  int64_t n = 1;
  for (size_t i = 1; i < dims.size(); ++i) n *= dims[i];
  return n;
}

IdxArray parse_idx(const std::string& bytes, const std::string& name) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const uint64_t size = bytes.size();
  PF_CHECK(size >= 4, name, ": ", size, " bytes is too short for an IDX header");
  PF_CHECK(p[0] == 0 && p[1] == 0, name, ": not an IDX file (the magic must start with two zero "
           "bytes; a .gz file must be decompressed first)");
  if (p[2] != 0x08) {
    char type[8];
    std::snprintf(type, sizeof type, "0x%02x", p[2]);
    fail(name, ": IDX value type ", type, " is not supported (only unsigned bytes, 0x08)");
  }
  const int rank = p[3];
  PF_CHECK(rank >= 1 && rank <= 4, name, ": IDX rank ", rank, " is not in [1, 4]");
  PF_CHECK(size >= 4 + 4 * static_cast<uint64_t>(rank), name, ": the IDX header is truncated (",
           size, " bytes for ", rank, " dimensions)");
  IdxArray a;
  uint64_t total = 1;
  for (int d = 0; d < rank; ++d) {
    const uint8_t* q = p + 4 + 4 * d;
    const uint64_t n = (uint64_t{q[0]} << 24) | (uint64_t{q[1]} << 16) | (uint64_t{q[2]} << 8) | q[3];
    PF_CHECK(n > 0, name, ": IDX dimension ", d, " is 0");
    total *= n;
    PF_CHECK(total <= size, name, ": IDX dimensions describe more values than the file holds");
    a.dims.push_back(static_cast<int64_t>(n));
  }
  const uint64_t header = 4 + 4 * static_cast<uint64_t>(rank);
  PF_CHECK(size - header == total, name, ": IDX dimensions describe ", total, " values but the ",
           "file holds ", size - header, size - header < total ? " (truncated)" : " (extra bytes)");
  a.data.assign(p + header, p + size);
  return a;
}

IdxArray read_idx_file(const std::string& path) {
  std::string bytes = read_file(path);
  if (is_gzip(bytes)) bytes = gunzip(bytes, path);
  return parse_idx(bytes, path);
}

std::string format_idx(const IdxArray& a) {
  PF_CHECK(!a.dims.empty() && a.dims.size() <= 4, "IDX: rank ", a.dims.size(), " is not in [1, 4]");
  std::string out = {'\0', '\0', '\x08', static_cast<char>(a.dims.size())};
  int64_t total = 1;
  for (int64_t n : a.dims) {
    PF_CHECK(n > 0 && n < (int64_t{1} << 32), "IDX: dimension ", n, " out of range");
    total *= n;
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((n >> s) & 0xff));
  }
  PF_CHECK(static_cast<int64_t>(a.data.size()) == total, "IDX: ", a.data.size(),
           " values for dimensions holding ", total);
  out.append(reinterpret_cast<const char*>(a.data.data()), a.data.size());
  return out;
}

}  // namespace pf
