#include "io/gzip.h"

#include <zlib.h>

#include "base/error.h"

namespace pf {

bool is_gzip(const std::string& b) {
  return b.size() >= 2 && static_cast<uint8_t>(b[0]) == 0x1f && static_cast<uint8_t>(b[1]) == 0x8b;
}

std::string gunzip(const std::string& bytes, const std::string& name, uint64_t max_bytes) {
  PF_CHECK(is_gzip(bytes), name, ": not a gzip file (no 1f 8b magic)");
  z_stream zs{};
  PF_CHECK(inflateInit2(&zs, 16 + MAX_WBITS) == Z_OK, name, ": cannot start gzip decoding");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  zs.avail_in = static_cast<uInt>(bytes.size());
  std::string out;
  char buf[1 << 16];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      const std::string msg = zs.msg ? zs.msg : (rc == Z_BUF_ERROR ? "truncated" : "corrupt");
      inflateEnd(&zs);
      fail(name, ": gzip data is ", rc == Z_BUF_ERROR ? "truncated" : "corrupt", " (", msg, ")");
    }
    out.append(buf, sizeof buf - zs.avail_out);
    if (out.size() > max_bytes) {
      inflateEnd(&zs);
      fail(name, ": decompresses to more than ", max_bytes, " bytes");
    }
    if (rc != Z_STREAM_END && zs.avail_in == 0 && zs.avail_out != 0) {
      inflateEnd(&zs);
      fail(name, ": gzip data is truncated");
    }
  }
  inflateEnd(&zs);
  return out;
}

}  // namespace pf
