// PNG images through libpng's simplified API: any PNG (gray, RGB, palette, alpha, 16-bit)
// read as 8-bit gray, and 8-bit RGB written (the confusion-matrix picture).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pf {

struct GrayImage {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> pixels;  // (height, width), row-major
};

// Errors name `name` and libpng's reason (not a PNG, truncated, bad CRC, too large).
GrayImage parse_png_gray(const std::string& bytes, const std::string& name);
GrayImage read_png_gray(const std::string& path);
// rgb: (height, width, 3) -> PNG bytes.
std::string format_png_rgb(const std::vector<uint8_t>& rgb, int64_t width, int64_t height);
std::string format_png_gray(const GrayImage& img);

}  // namespace pf
