// Every layer's inference memory for S sequences (slots), and each slot's position. A
// server keeps one pool and many slots; a one-sequence session is a pool of one slot.
// (It lives beside the model rather than in infer/ because the model's cached forward
// reads and advances it.)
#pragma once
#include <memory>
#include <vector>

#include "models/core/layer_state.h"

namespace pf {

class StatePool {
 public:
  StatePool(std::vector<std::unique_ptr<LayerState>> layers, int64_t slots, int64_t capacity);
  int64_t slots() const { return static_cast<int64_t>(used_.size()); }
  int64_t capacity() const { return cap_; }  // tokens a slot may hold
  // A free slot, cleared; errors when all are in use.
  int64_t acquire();
  void release(int64_t slot);
  void clear(int64_t slot);             // back to position 0
  void fork(int64_t src, int64_t dst);  // dst continues exactly where src is
  int64_t position(int64_t slot) const { return pos_[check(slot)]; }
  void advance(int64_t slot, int64_t n) { pos_[check(slot)] += n; }
  int64_t bytes(int64_t slot) const;  // memory the slot holds now
  LayerState& layer(size_t l) { return *layers_[l]; }
  size_t num_layers() const { return layers_.size(); }
  // The slot's memory as named tensors, and its inverse (which also sets the position).
  NamedTensors save(int64_t slot) const;
  void load(int64_t slot, const NamedTensors& tensors, int64_t position);

 private:
  int64_t check(int64_t slot) const;
  std::vector<std::unique_ptr<LayerState>> layers_;
  std::vector<int64_t> pos_;
  std::vector<bool> used_;
  int64_t cap_;
};

}  // namespace pf
