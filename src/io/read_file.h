// Reading outside files safely: only regular files are opened (a FIFO or device would
// block or never end), and sizes are bounded before anything is read.
#pragma once
#include <cstdint>
#include <string>

namespace pf {

constexpr uint64_t kMaxReadBytes = uint64_t{16} << 30;  // 16 GiB: more than any text we train on

// Throws "PATH: not a regular file (a FIFO)" and similar; "cannot open PATH" when absent.
void require_regular_file(const std::string& path);
// True when both paths name one existing file (hard links and symlinks included).
bool same_file(const std::string& a, const std::string& b);
// Whole file as bytes after the checks above; larger than max_bytes is an error.
std::string read_file(const std::string& path, uint64_t max_bytes = kMaxReadBytes);

}  // namespace pf
