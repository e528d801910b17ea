#include "models/core/layer_state.h"

#include <cstring>

#include "base/error.h"

namespace pf {

namespace {
Shape with_slot_axis(int64_t slots, const Shape& s) {
  Shape out = {slots};
  out.insert(out.end(), s.begin(), s.end());
  return out;
}
}  // namespace

RecurrentState::RecurrentState(int64_t slots,
                               const std::vector<std::pair<std::string, Shape>>& shapes)
    : slots_(slots) {
  PF_CHECK(slots > 0, "a state pool needs at least one slot");
  for (const auto& [name, shape] : shapes)
    tensors_.emplace_back(name, Tensor::zeros(with_slot_axis(slots, shape)));
}

float* RecurrentState::at(size_t i, int64_t slot) {
  Tensor& t = tensors_[i].second;
  return t.data() + slot * (t.numel() / slots_);
}

void RecurrentState::clear(int64_t slot) {
  for (size_t i = 0; i < tensors_.size(); ++i)
    std::memset(at(i, slot), 0, sizeof(float) * (tensors_[i].second.numel() / slots_));
}

void RecurrentState::copy(int64_t src, int64_t dst, int64_t) {
  if (src == dst) return;
  for (size_t i = 0; i < tensors_.size(); ++i)
    std::memcpy(at(i, dst), at(i, src), sizeof(float) * (tensors_[i].second.numel() / slots_));
}

int64_t RecurrentState::bytes(int64_t) const {
  int64_t n = 0;
  for (const auto& [name, t] : tensors_) n += t.numel() / slots_;
  return n * static_cast<int64_t>(sizeof(float));
}

NamedTensors RecurrentState::save(int64_t slot, int64_t, int64_t layer) const {
  NamedTensors out;
  for (const auto& [name, t] : tensors_)  // (1, ...): the layout one-sequence sessions used
    out.emplace_back("layers." + std::to_string(layer) + "." + name, t.slice(0, slot, slot + 1));
  return out;
}

void RecurrentState::load(int64_t slot, int64_t, const NamedTensors& in, size_t* next) {
  for (auto& [name, t] : tensors_) {
    PF_CHECK(*next < in.size(), "state has too few tensors");
    const Tensor& src = in[*next].second;
    Tensor dst = t.slice(0, slot, slot + 1);
    PF_CHECK(src.shape() == dst.shape(), "state tensor '", in[*next].first, "' has shape ",
             shape_str(src.shape()), ", expected ", shape_str(dst.shape()));
    dst.copy_from(src);
    ++*next;
  }
}

KvState::KvState(int64_t slots, int64_t capacity, int64_t kv_heads, int64_t head_dim)
    : cap_(capacity), kv_(kv_heads), hd_(head_dim), k_(slots), v_(slots) {
  PF_CHECK(slots > 0, "a state pool needs at least one slot");
  PF_CHECK(capacity > 0, "session capacity must be positive");
}

void KvState::ensure(int64_t slot) {
  if (k_[slot].defined()) return;
  k_[slot] = Tensor::empty({cap_, kv_, hd_});
  v_[slot] = Tensor::empty({cap_, kv_, hd_});
}

float* KvState::k(int64_t slot) {
  ensure(slot);
  return k_[slot].data();
}
float* KvState::v(int64_t slot) {
  ensure(slot);
  return v_[slot].data();
}

void KvState::copy(int64_t src, int64_t dst, int64_t len) {
  if (src == dst || len == 0) return;
  const size_t n = sizeof(float) * len * kv_ * hd_;
  std::memcpy(k(dst), k(src), n);
  std::memcpy(v(dst), v(src), n);
}

int64_t KvState::bytes(int64_t len) const {
  return 2 * len * kv_ * hd_ * static_cast<int64_t>(sizeof(float));
}

NamedTensors KvState::save(int64_t slot, int64_t len, int64_t layer) const {
  // Only the filled part: (len, KV, hd).
  auto part = [&](const Tensor& t) {
    return t.defined() ? t.slice(0, 0, len) : Tensor::zeros({len, kv_, hd_});
  };
  return {{"k_cache." + std::to_string(layer), part(k_[slot])},
          {"v_cache." + std::to_string(layer), part(v_[slot])}};
}

void KvState::load(int64_t slot, int64_t len, const NamedTensors& in, size_t* next) {
  PF_CHECK(len <= cap_, "state holds ", len, " tokens, more than the session capacity ", cap_,
           " (raise --context)");
  PF_CHECK(*next + 2 <= in.size(), "state has too few tensors");
  const Shape want = {len, kv_, hd_};
  for (int i = 0; i < 2; ++i) {
    const auto& [name, t] = in[*next + i];
    PF_CHECK(t.shape() == want, "state tensor '", name, "' has shape ", shape_str(t.shape()),
             ", expected ", shape_str(want));
  }
  ensure(slot);
  k_[slot].slice(0, 0, len).copy_from(in[*next].second);
  v_[slot].slice(0, 0, len).copy_from(in[*next + 1].second);
  *next += 2;
}

}  // namespace pf
