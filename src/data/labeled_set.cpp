#include "data/labeled_set.h"

#include <algorithm>

#include "base/error.h"

namespace pf {

void LabeledSet::add(const std::vector<float>& x, int32_t label) {
  PF_CHECK(static_cast<int64_t>(x.size()) == length * channels, "example of ", x.size(),
           " values, expected ", length, " x ", channels);
  content.insert(content.end(), x.begin(), x.end());
  labels.push_back(label);
  ++n;
}

LabeledSet LabeledSet::slice(int64_t begin, int64_t end) const {
  PF_CHECK(0 <= begin && begin <= end && end <= n, "slice [", begin, ", ", end, ") of ", n);
  LabeledSet s;
  s.n = end - begin;
  s.length = length;
  s.channels = channels;
  s.classes = classes;
  s.content.assign(content.begin() + begin * length * channels,
                   content.begin() + end * length * channels);
  s.labels.assign(labels.begin() + begin, labels.begin() + end);
  return s;
}

void LabeledSet::check(const std::string& what) const {
  PF_CHECK(n > 0, what, ": no examples");
  PF_CHECK(static_cast<int64_t>(labels.size()) == n &&
               static_cast<int64_t>(content.size()) == n * length * channels,
           what, ": sizes disagree");
  PF_CHECK(classes.size() >= 2, what, ": ", classes.size(), " classes (need at least 2)");
  for (int64_t i = 0; i < n; ++i)
    PF_CHECK(labels[i] >= 0 && labels[i] < static_cast<int32_t>(classes.size()), what,
             ": example ", i, " has label ", labels[i], " outside [0, ", classes.size(), ")");
}

void split_validation(const LabeledSet& set, int64_t every, LabeledSet* train, LabeledSet* val) {
  PF_CHECK(every >= 2, "validation split: every ", every, " is below 2");
  for (LabeledSet* s : {train, val}) {
    *s = LabeledSet{};
    s->length = set.length;
    s->channels = set.channels;
    s->classes = set.classes;
  }
  std::vector<int64_t> seen(set.classes.size(), 0);
  const int64_t per = set.length * set.channels;
  for (int64_t i = 0; i < set.n; ++i) {
    LabeledSet* to = (seen[set.labels[i]]++ % every == every - 1) ? val : train;
    to->content.insert(to->content.end(), set.example(i), set.example(i) + per);
    to->labels.push_back(set.labels[i]);
    ++to->n;
  }
}

}  // namespace pf
