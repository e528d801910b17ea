#include "train/classify_task.h"

#include <cmath>
#include <cstdio>

#include "autograd/ops.h"
#include "base/error.h"
#include "base/rng.h"

namespace pf {

ClassifyTask::ClassifyTask(Classifier& model, const InputSpec& spec, const LabeledSet& train,
                           const LabeledSet& val)
    : model_(model), spec_(spec), positions_(spec.positions()), train_(train), val_(val) {
  train_.check("training data");
  val_.check("validation data");
  PF_CHECK(model.input_length() == spec.length() && model.input_channels() == spec.channels(),
           "the model reads (", model.input_length(), ", ", model.input_channels(),
           ") inputs but the front end makes (", spec.length(), ", ", spec.channels(), ")");
  PF_CHECK(static_cast<int64_t>(train.classes.size()) == model.num_classes(), "the data has ",
           train.classes.size(), " classes, the model ", model.num_classes());
}

std::string ClassifyTask::format_val(double v) const {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", v);
  return buf;
}

void ClassifyTask::check_fits(int64_t batch) const {
  PF_CHECK(val_.n > 0, "no validation examples");
  PF_CHECK(batch <= train_.n, "--batch ", batch, " is larger than the ", train_.n,
           " training examples");
}

const std::vector<int64_t>& ClassifyTask::epoch_order(uint64_t seed, int64_t epoch) {
  if (epoch != cached_epoch_ || seed != cached_seed_) {
    order_.resize(train_.n);
    for (int64_t i = 0; i < train_.n; ++i) order_[i] = i;
    Rng rng(seed ^ 0xc1a55ULL, static_cast<uint64_t>(epoch));
    for (int64_t i = train_.n - 1; i > 0; --i)  // Fisher-Yates
      std::swap(order_[i], order_[rng.below(static_cast<uint64_t>(i + 1))]);
    cached_epoch_ = epoch;
    cached_seed_ = seed;
  }
  return order_;
}

Var ClassifyTask::train_loss(int64_t batch, uint64_t seed, uint64_t sample,
                             const ForwardOptions& fo) {
  std::vector<int64_t> idx(batch);
  std::vector<int32_t> labels(batch);
  for (int64_t j = 0; j < batch; ++j) {
    const int64_t p = static_cast<int64_t>(sample) * batch + j;  // position in the example stream
    idx[j] = epoch_order(seed, p / train_.n)[p % train_.n];
    labels[j] = train_.labels[idx[j]];
  }
  // Augmented copies of the batch's content; the draws are a function of (seed, sample).
  LabeledSet copies;
  if (spec_.augment) {
    copies.length = train_.length;
    copies.channels = train_.channels;
    copies.classes = train_.classes;
    const int64_t per = train_.length * train_.channels;
    Rng rng(seed ^ 0xa09e17ULL, sample);
    for (int64_t j = 0; j < batch; ++j) {
      copies.add(std::vector<float>(train_.example(idx[j]), train_.example(idx[j]) + per), labels[j]);
      spec_.augment_content(copies.content.data() + j * per, rng);
      idx[j] = j;  // now the copy's index
    }
  }
  Var x(assemble_batch(spec_, positions_, spec_.augment ? copies : train_, idx));  // (B, N, C)
  return cross_entropy(model_.forward(x, fo), labels);
}

double ClassifyTask::validate(int64_t batch, int64_t max_batches) {
  const int64_t n = std::min(val_.n, batch * max_batches);
  const Predictions p = predict_set(model_, spec_, val_.slice(0, n), batch);
  int64_t right = 0;
  for (int64_t i = 0; i < n; ++i) right += p.labels[i] == val_.labels[i];
  return 100.0 * right / n;
}

std::vector<float> softmax_rows(const Tensor& logits) {
  const int64_t n = logits.size(0), K = logits.size(1);
  std::vector<float> out(n * K);
  for (int64_t i = 0; i < n; ++i) {
    const float* l = logits.data() + i * K;
    const float mx = *std::max_element(l, l + K);
    double sum = 0;
    for (int64_t k = 0; k < K; ++k) sum += std::exp(double(l[k] - mx));
    for (int64_t k = 0; k < K; ++k) out[i * K + k] = static_cast<float>(std::exp(double(l[k] - mx)) / sum);
  }
  return out;
}

Predictions predict_set(Classifier& model, const InputSpec& spec, const LabeledSet& set,
                        int64_t batch) {
  NoGradScope no_grad;
  const std::vector<float> pos = spec.positions();
  const int64_t K = model.num_classes();
  Predictions p;
  p.labels.resize(set.n);
  p.probs.resize(set.n * K);
  for (int64_t b0 = 0; b0 < set.n; b0 += batch) {
    const int64_t b1 = std::min(set.n, b0 + batch);
    std::vector<int64_t> idx;
    for (int64_t i = b0; i < b1; ++i) idx.push_back(i);
    Var logits = model.forward(Var(assemble_batch(spec, pos, set, idx)), ForwardOptions{});
    const std::vector<float> pr = softmax_rows(logits.value());
    std::copy(pr.begin(), pr.end(), p.probs.begin() + b0 * K);
    for (int64_t i = b0; i < b1; ++i) {
      const float* r = pr.data() + (i - b0) * K;
      p.labels[i] = static_cast<int32_t>(std::max_element(r, r + K) - r);
    }
  }
  return p;
}

}  // namespace pf
