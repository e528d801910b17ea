#include "models/core/state_pool.h"

#include <map>
#include <string>

#include "base/error.h"

namespace pf {

StatePool::StatePool(std::vector<std::unique_ptr<LayerState>> layers, int64_t slots,
                     int64_t capacity)
    : layers_(std::move(layers)), pos_(slots, 0), used_(slots, false), cap_(capacity) {
  PF_CHECK(slots > 0, "a state pool needs at least one slot");
}

int64_t StatePool::check(int64_t slot) const {
  PF_CHECK(slot >= 0 && slot < slots(), "state slot ", slot, " is outside the pool of ", slots());
  return slot;
}

int64_t StatePool::acquire() {
  for (int64_t s = 0; s < slots(); ++s)
    if (!used_[s]) {
      used_[s] = true;
      clear(s);
      return s;
    }
  fail("all ", slots(), " state slots are in use");
}

void StatePool::release(int64_t slot) { used_[check(slot)] = false; }

void StatePool::clear(int64_t slot) {
  for (auto& l : layers_) l->clear(check(slot));
  pos_[slot] = 0;
}

void StatePool::fork(int64_t src, int64_t dst) {
  check(src), check(dst);
  for (auto& l : layers_) l->copy(src, dst, pos_[src]);
  pos_[dst] = pos_[src];
  used_[dst] = true;
}

int64_t StatePool::bytes(int64_t slot) const {
  int64_t n = 0;
  for (const auto& l : layers_) n += l->bytes(pos_[check(slot)]);
  return n;
}

NamedTensors StatePool::save(int64_t slot) const {
  NamedTensors out;
  for (size_t l = 0; l < layers_.size(); ++l)
    for (auto& t : layers_[l]->save(check(slot), pos_[slot], static_cast<int64_t>(l)))
      out.push_back(std::move(t));
  return out;
}

void StatePool::load(int64_t slot, const NamedTensors& tensors, int64_t position) {
  PF_CHECK(position >= 0 && position <= cap_, "state holds ", position,
           " tokens, more than the session capacity ", cap_, " (raise --context)");
  // A file lists tensors by name, not in save()'s order: put them in that order first.
  std::map<std::string, const Tensor*> by_name;
  for (const auto& [name, t] : tensors)
    PF_CHECK(by_name.emplace(name, &t).second, "state tensor '", name, "' appears twice");
  NamedTensors ordered;
  for (size_t l = 0; l < layers_.size(); ++l)
    for (const auto& [name, unused] : layers_[l]->save(check(slot), 0, static_cast<int64_t>(l))) {
      auto it = by_name.find(name);
      PF_CHECK(it != by_name.end(), "state has no tensor '", name, "'");
      ordered.emplace_back(name, *it->second);
      by_name.erase(it);
    }
  PF_CHECK(by_name.empty(), "state has an unexpected tensor '", by_name.begin()->first, "'");
  size_t next = 0;
  for (auto& l : layers_) l->load(check(slot), position, ordered, &next);
  PF_CHECK(next == ordered.size(), "state has ", ordered.size(), " tensors, expected ", next);
  pos_[slot] = position;
}

}  // namespace pf
