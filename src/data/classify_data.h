// Classification data sets: MNIST-style IDX files (Fashion-MNIST as Debian ships it), or a
// folder of class folders (SPLIT/CLASS/FILE: PNGs, WAVs or texts, read by the input spec's
// modality; the spoken-digit set scripts/make_spoken_digits.sh builds has this layout).
#pragma once
#include <string>

#include "data/input_spec.h"
#include "data/labeled_set.h"

namespace pf {

// Debian's dataset-fashion-mnist.
inline const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// `source`: "fashion-mnist" (the Debian directory), a directory holding
// {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz], or a directory with SPLIT/CLASS/FILE.
// split: "train" or "test". At most `limit` examples (0 = all), taken evenly over classes
// for a folder and in file order for IDX.
LabeledSet load_classify_data(const std::string& source, const InputSpec& spec,
                              const std::string& split, int64_t limit = 0);
// The input spec a source implies when the user gives none (modality, image size).
InputSpec default_input_spec(const std::string& source);
// True for "fashion-mnist" or a directory of IDX files.
bool is_idx_source(const std::string& source);

}  // namespace pf
