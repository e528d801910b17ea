// IDX files (the MNIST / Fashion-MNIST format): a 4-byte magic (0, 0, type, rank), rank
// big-endian uint32 dimensions, then the values, row-major. Only unsigned bytes (type 0x08)
// are read: images and labels both use them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pf {

struct IdxArray {
  std::vector<int64_t> dims;   // e.g. (60000, 28, 28) for images, (60000) for labels
  std::vector<uint8_t> data;   // prod(dims) values, row-major
  int64_t items() const { return dims.empty() ? 0 : dims[0]; }
  int64_t item_size() const;   // values per item: prod(dims[1..])
};

// Parses an IDX file's bytes; `name` is used in errors ("FILE: ...").
IdxArray parse_idx(const std::string& bytes, const std::string& name);
// Reads and parses a file, plain or gzip-compressed (as Debian ships Fashion-MNIST).
IdxArray read_idx_file(const std::string& path);
// The bytes of an IDX file of unsigned bytes (for tests and for writing subsets).
std::string format_idx(const IdxArray& a);

}  // namespace pf
