#include "data/classify_data.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <utility>

#include "base/error.h"
#include "data/idx_file.h"
#include "data/png_file.h"

namespace pf {

namespace fs = std::filesystem;

namespace {
std::string idx_dir(const std::string& source) {
  return source == "fashion-mnist" ? kFashionMnistDir : source;
}

// FILE or FILE.gz in dir.
std::string find_idx(const std::string& dir, const std::string& stem) {
  for (const std::string& p : {dir + "/" + stem, dir + "/" + stem + ".gz"})
    if (fs::exists(p)) return p;
  fail(dir, ": no ", stem, " (or ", stem, ".gz)",
       dir == kFashionMnistDir ? "; install it with: apt-get install dataset-fashion-mnist "
                                 "(bash scripts/setup.sh does)"
                               : "");
}

LabeledSet load_idx(const std::string& source, const InputSpec& spec, const std::string& split,
                    int64_t limit) {
  PF_CHECK(spec.modality == "image", source, ": IDX files hold images, but the input spec reads ",
           spec.modality);
  const std::string dir = idx_dir(source);
  const std::string pre = split == "train" ? "train" : "t10k";
  const std::string ip = find_idx(dir, pre + "-images-idx3-ubyte");
  const std::string lp = find_idx(dir, pre + "-labels-idx1-ubyte");
  const IdxArray images = read_idx_file(ip), labels = read_idx_file(lp);
  PF_CHECK(images.dims.size() == 3, ip, ": rank ", images.dims.size(), ", images need rank 3");
  PF_CHECK(labels.dims.size() == 1, lp, ": rank ", labels.dims.size(), ", labels need rank 1");
  PF_CHECK(images.items() == labels.items(), ip, " holds ", images.items(), " images but ", lp,
           " holds ", labels.items(), " labels");
  LabeledSet s;
  s.length = spec.length();
  s.channels = spec.content_channels();
  if (dir == kFashionMnistDir || source == "fashion-mnist")
    s.classes = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  else
    for (int c = 0; c <= *std::max_element(labels.data.begin(), labels.data.end()); ++c)
      s.classes.push_back(std::to_string(c));
  const int64_t n = limit > 0 ? std::min(limit, images.items()) : images.items();
  const int64_t h = images.dims[1], w = images.dims[2];
  s.content.reserve(n * s.length * s.channels);
  for (int64_t i = 0; i < n; ++i) {
    PF_CHECK(labels.data[i] < s.classes.size(), lp, ": label ", int(labels.data[i]), " of item ", i,
             " is outside [0, ", s.classes.size(), ")");
    s.add(spec.image_content(images.data.data() + i * h * w, h, w, ip), labels.data[i]);
  }
  return s;
}

LabeledSet load_folder(const std::string& source, const InputSpec& spec, const std::string& split,
                       int64_t limit) {
  const fs::path root = fs::path(source) / split;
  PF_CHECK(fs::is_directory(root), source, ": no '", split,
           "' directory (a folder data set is SPLIT/CLASS/FILE)");
  std::vector<std::string> classes;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory()) classes.push_back(e.path().filename().string());
  std::sort(classes.begin(), classes.end());
  PF_CHECK(classes.size() >= 2, root.string(), ": ", classes.size(),
           " class folders (need at least 2)");
  std::vector<std::vector<std::string>> files(classes.size());
  for (size_t c = 0; c < classes.size(); ++c) {
    for (const auto& e : fs::directory_iterator(root / classes[c]))
      if (e.is_regular_file() && e.path().filename().string()[0] != '.')
        files[c].push_back(e.path().string());
    std::sort(files[c].begin(), files[c].end());
    PF_CHECK(!files[c].empty(), (root / classes[c]).string(), ": no files");
  }
  LabeledSet s;
  s.length = spec.length();
  s.channels = spec.content_channels();
  s.classes = classes;
  // Interleaved over classes, so a limit keeps the balance.
  std::vector<std::pair<std::string, int32_t>> order;
  size_t most = 0;
  for (const auto& f : files) most = std::max(most, f.size());
  for (size_t i = 0; i < most; ++i)
    for (size_t c = 0; c < classes.size(); ++c)
      if (i < files[c].size() && (limit <= 0 || static_cast<int64_t>(order.size()) < limit))
        order.emplace_back(files[c][i], static_cast<int32_t>(c));
  // Decoding (a log-mel per clip) runs on every core; the first error is reported.
  const int64_t n = static_cast<int64_t>(order.size());
  std::vector<std::vector<float>> content(n);
  std::string first_error;
#pragma omp parallel for schedule(dynamic, 8)
  for (int64_t i = 0; i < n; ++i) {
    try {
      content[i] = spec.file_content(order[i].first);
    } catch (const std::exception& e) {
#pragma omp critical
      if (first_error.empty()) first_error = e.what();
    }
  }
  if (!first_error.empty()) fail(first_error);
  for (int64_t i = 0; i < n; ++i) s.add(content[i], order[i].second);
  return s;
}
}  // namespace

bool is_idx_source(const std::string& source) {
  if (source == "fashion-mnist") return true;
  for (const char* f : {"train-images-idx3-ubyte", "train-images-idx3-ubyte.gz",
                        "t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"})
    if (fs::exists(fs::path(source) / f)) return true;
  return false;
}

LabeledSet load_classify_data(const std::string& source, const InputSpec& spec,
                              const std::string& split, int64_t limit) {
  PF_CHECK(split == "train" || split == "test", "split '", split, "' is not train or test");
  spec.validate();
  LabeledSet s = is_idx_source(source) ? load_idx(source, spec, split, limit)
                                       : load_folder(source, spec, split, limit);
  s.check(source + " (" + split + ")");
  return s;
}

InputSpec default_input_spec(const std::string& source) {
  InputSpec s;
  if (is_idx_source(source)) return s;  // 28x28 images
  // A folder: the first file decides the modality.
  const fs::path root = fs::path(source) / "train";
  PF_CHECK(fs::is_directory(root), source, ": neither IDX files nor a train/ folder");
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    std::string ext = e.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
    if (ext == ".wav") {
      s.modality = "audio";
    } else if (ext == ".png") {
      const GrayImage g = read_png_gray(e.path().string());
      s.height = g.height;
      s.width = g.width;
    } else {
      s.modality = "text";
    }
    return s;
  }
  fail(root.string(), ": no files");
}

}  // namespace pf
