// The three generators. Token conventions are per task and documented at each class.
#include <algorithm>
#include <cmath>

#include "base/checks.h"
#include "base/error.h"
#include "tasks/synthetic_task.h"

namespace pf {

namespace {

// Selective copying (Mamba paper): 0 is noise, 1 the marker, data tokens are [2, V). M data
// tokens sit at sorted random positions of the first T - M tokens; then M markers, at which
// the targets are the data tokens in order.
class SelectiveCopy : public SyntheticTask {
 public:
  using SyntheticTask::SyntheticTask;
  int64_t min_length() const override { return 2 * opt_.data_tokens; }
  void make_sequence(Rng& rng, int64_t T, int32_t* in, int32_t* tgt) const override {
    const int64_t M = opt_.data_tokens, body = T - M;
    std::fill(in, in + T, 0);
    std::fill(tgt, tgt + T, -1);
    // M distinct positions of the body, sorted (Floyd's sampling keeps it O(M log M)).
    std::vector<int64_t> pos;
    for (int64_t j = body - M; j < body; ++j) {
      const int64_t t = static_cast<int64_t>(rng.below(j + 1));
      pos.push_back(std::find(pos.begin(), pos.end(), t) == pos.end() ? t : j);
    }
    std::sort(pos.begin(), pos.end());
    for (int64_t i = 0; i < M; ++i) {
      const int32_t d = static_cast<int32_t>(2 + rng.below(opt_.vocab - 2));
      in[pos[i]] = d;
      in[body + i] = 1;
      tgt[body + i] = d;
    }
  }
};

// Induction heads (H3 / Mamba papers): tokens [1, V) at random; 0 is the special token. It
// appears once in the first half, followed by the key, and again as the last token, where
// the target is the key.
class Induction : public SyntheticTask {
 public:
  using SyntheticTask::SyntheticTask;
  int64_t min_length() const override { return 4; }
  void make_sequence(Rng& rng, int64_t T, int32_t* in, int32_t* tgt) const override {
    for (int64_t t = 0; t < T; ++t) {
      in[t] = static_cast<int32_t>(1 + rng.below(opt_.vocab - 1));
      tgt[t] = -1;
    }
    const int64_t p = static_cast<int64_t>(rng.below(std::max<int64_t>(1, T / 2 - 1)));
    in[p] = 0;
    in[T - 1] = 0;
    tgt[T - 1] = in[p + 1];
  }
};

// MQAR (Zoology): k key-value pairs (keys from [1, V/2), values from [V/2, V), all distinct),
// then each key queried once at position 2k + 2g, the gaps g drawn without replacement with
// p(g) ~ (g+1)^(a-1); the target at a query is its value. Other positions are random tokens.
class Mqar : public SyntheticTask {
 public:
  using SyntheticTask::SyntheticTask;
  int64_t min_length() const override {
    int64_t k = 0;
    for (int64_t p : opt_.pairs) k = std::max(k, p);
    return std::max<int64_t>(4 * k, 4);
  }
  void check_fits(int64_t B, int64_t T) const override {
    SyntheticTask::check_fits(B, T);
    PF_CHECK(opt_.vocab / 2 - 1 >= T / 4 || !opt_.pairs.empty(), "mqar at --seq ", T, " draws ",
             T / 4, " pairs, more than the ", opt_.vocab / 2 - 1, " keys of --vocab ", opt_.vocab,
             "; give --pairs or a larger --vocab");
  }
  void make_sequence(Rng& rng, int64_t T, int32_t* in, int32_t* tgt) const override {
    const int64_t V = opt_.vocab, half = V / 2;
    int64_t k = opt_.pairs.empty() ? T / 4 : opt_.pairs[rng.below(opt_.pairs.size())];
    k = std::min(k, T / 4);
    for (int64_t t = 0; t < T; ++t) {
      in[t] = static_cast<int32_t>(rng.below(V));
      tgt[t] = -1;
    }
    const std::vector<int64_t> keys = distinct(rng, 1, half, k);
    const std::vector<int64_t> vals = distinct(rng, half, V, k);
    for (int64_t i = 0; i < k; ++i) {
      in[2 * i] = static_cast<int32_t>(keys[i]);
      in[2 * i + 1] = static_cast<int32_t>(vals[i]);
    }
    const int64_t space = (T - 2 * k) / 2;
    std::vector<double> w(space);  // gap weights; a chosen gap's weight drops to 0
    double total = 0;
    for (int64_t g = 0; g < space; ++g) total += w[g] = std::pow(g + 1.0, opt_.power_a - 1.0);
    for (int64_t i = 0; i < k; ++i) {
      double r = rng.uniform() * total;
      int64_t g = 0;
      while (g < space - 1 && (w[g] == 0 || r >= w[g])) r -= w[g++];
      while (w[g] == 0) --g;  // rounding ran past the last free gap
      total -= w[g];
      w[g] = 0;
      const int64_t q = 2 * k + 2 * g;
      in[q] = static_cast<int32_t>(keys[i]);
      tgt[q] = static_cast<int32_t>(vals[i]);
    }
  }

 private:
  // n distinct integers from [lo, hi), in random order.
  static std::vector<int64_t> distinct(Rng& rng, int64_t lo, int64_t hi, int64_t n) {
    std::vector<int64_t> out;
    while (static_cast<int64_t>(out.size()) < n) {
      const int64_t x = lo + static_cast<int64_t>(rng.below(hi - lo));
      if (std::find(out.begin(), out.end(), x) == out.end()) out.push_back(x);
    }
    return out;
  }
};

}  // namespace

std::vector<std::string> task_names() { return {"selective_copy", "induction", "mqar"}; }

std::unique_ptr<SyntheticTask> make_task(const TaskOptions& in) {
  TaskOptions o = in;
  std::string names;
  for (const std::string& n : task_names()) names += (names.empty() ? "" : ", ") + n;
  constexpr int64_t kMaxVocab = 1 << 20;
  if (o.name == "selective_copy") {
    if (o.vocab == 0) o.vocab = 16;
    check_range("--vocab", o.vocab, 3, kMaxVocab);
    check_range("--data-tokens", o.data_tokens, 1, 1 << 20);
    return std::make_unique<SelectiveCopy>(o);
  }
  if (o.name == "induction") {
    if (o.vocab == 0) o.vocab = 16;
    check_range("--vocab", o.vocab, 3, kMaxVocab);
    return std::make_unique<Induction>(o);
  }
  if (o.name == "mqar") {
    if (o.vocab == 0) o.vocab = 8192;
    check_range("--vocab", o.vocab, 4, kMaxVocab);
    check_range("--power-a", o.power_a, 0.0, 1.0, /*open_lo=*/true);
    for (int64_t p : o.pairs) {
      check_range("--pairs", p, 1, 1 << 20);
      PF_CHECK(p <= o.vocab / 2 - 1, "--pairs ", p, " needs more than ", o.vocab / 2 - 1,
               " distinct keys; raise --vocab");
    }
    return std::make_unique<Mqar>(o);
  }
  fail("unknown task '", o.name, "' (known: ", names, ")");
}

}  // namespace pf
