// gzip decompression (zlib), for data sets shipped compressed (Debian's Fashion-MNIST).
#pragma once
#include <cstdint>
#include <string>

namespace pf {

// The decompressed bytes of a gzip stream; errors name `name` and the problem (not gzip,
// truncated, corrupt, larger than max_bytes).
std::string gunzip(const std::string& bytes, const std::string& name,
                   uint64_t max_bytes = uint64_t{1} << 32);
// True when the bytes start with the gzip magic (1f 8b).
bool is_gzip(const std::string& bytes);

}  // namespace pf
