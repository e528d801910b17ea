// Labelled examples for classification, already through their front end's content stage:
// each example is (length, content channels) floats (pixel patches, log-mel frames, byte
// values). Position features are the same for every example and are appended when a
// batch is assembled (data/input_spec.h), so a data set holds only what differs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pf {

struct LabeledSet {
  int64_t n = 0, length = 0, channels = 0;
  std::vector<float> content;       // (n, length, channels)
  std::vector<int32_t> labels;      // (n), in [0, classes.size())
  std::vector<std::string> classes;  // class names, index = label

  const float* example(int64_t i) const { return content.data() + i * length * channels; }
  void add(const std::vector<float>& x, int32_t label);  // x: (length, channels)
  // Examples [begin, end) as a new set (same classes).
  LabeledSet slice(int64_t begin, int64_t end) const;
  // Throws when a label is out of range or the sizes disagree; `what` names the data.
  void check(const std::string& what) const;
};

// A deterministic split of `set` into (train, validation): every k-th example of each
// class goes to validation, so both keep the class balance.
void split_validation(const LabeledSet& set, int64_t every, LabeledSet* train, LabeledSet* val);

}  // namespace pf
