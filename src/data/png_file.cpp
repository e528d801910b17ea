#include "data/png_file.h"

#include <png.h>

#include <cstring>

#include "base/error.h"
#include "io/read_file.h"

namespace pf {

namespace {
constexpr int64_t kMaxSide = 1 << 14;  // a larger image is not an input any model here reads

std::string format_png(const void* data, int64_t width, int64_t height, uint32_t format) {
  PF_CHECK(width > 0 && height > 0 && width <= kMaxSide && height <= kMaxSide, "PNG: size ", width,
           "x", height, " out of range");
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = static_cast<png_uint_32>(width);
  img.height = static_cast<png_uint_32>(height);
  img.format = format;
  png_alloc_size_t size = 0;
  PF_CHECK(png_image_write_to_memory(&img, nullptr, &size, 0, data, 0, nullptr),
           "PNG: cannot encode: ", img.message);
  std::string out(size, '\0');
  PF_CHECK(png_image_write_to_memory(&img, out.data(), &size, 0, data, 0, nullptr),
           "PNG: cannot encode: ", img.message);
  out.resize(size);
  return out;
}
}  // namespace

GrayImage parse_png_gray(const std::string& bytes, const std::string& name) {
  static const unsigned char kMagic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  PF_CHECK(bytes.size() >= 8 && std::memcmp(bytes.data(), kMagic, 8) == 0, name,
           ": not a PNG file (no PNG signature)");
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&img, bytes.data(), bytes.size()))
    fail(name, ": bad PNG: ", img.message);
  if (img.width == 0 || img.height == 0 || img.width > kMaxSide || img.height > kMaxSide) {
    png_image_free(&img);
    fail(name, ": PNG of ", img.width, "x", img.height, " pixels is outside 1..", kMaxSide);
  }
  img.format = PNG_FORMAT_GRAY;
  GrayImage g;
  g.width = img.width;
  g.height = img.height;
  g.pixels.resize(static_cast<size_t>(g.width * g.height));
  // Transparent pixels are composited on black, as the data sets' backgrounds are.
  png_color black = {0, 0, 0};
  if (!png_image_finish_read(&img, &black, g.pixels.data(), 0, nullptr))
    fail(name, ": bad PNG: ", img.message);
  return g;
}

GrayImage read_png_gray(const std::string& path) {
  return parse_png_gray(read_file(path, 1 << 28), path);
}

std::string format_png_rgb(const std::vector<uint8_t>& rgb, int64_t width, int64_t height) {
  PF_CHECK(static_cast<int64_t>(rgb.size()) == width * height * 3, "PNG: ", rgb.size(),
           " bytes for ", width, "x", height, " RGB");
  return format_png(rgb.data(), width, height, PNG_FORMAT_RGB);
}

std::string format_png_gray(const GrayImage& img) {
  PF_CHECK(static_cast<int64_t>(img.pixels.size()) == img.width * img.height, "PNG: ",
           img.pixels.size(), " pixels for ", img.width, "x", img.height);
  return format_png(img.pixels.data(), img.width, img.height, PNG_FORMAT_GRAY);
}

}  // namespace pf
