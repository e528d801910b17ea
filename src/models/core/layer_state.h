// One layer's inference memory for S sequences (slots). Recurrent layers keep tensors of
// a fixed size per slot; attention layers keep a KV cache that grows with the sequence.
// Saved slots use the names earlier postformer state files used, so they keep loading.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace pf {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class LayerState {
 public:
  virtual ~LayerState() = default;
  virtual void clear(int64_t slot) = 0;
  // Copies slot src (holding len tokens) into slot dst: forks a sequence.
  virtual void copy(int64_t src, int64_t dst, int64_t len) = 0;
  // Bytes one slot holds after len tokens.
  virtual int64_t bytes(int64_t len) const = 0;
  // The slot's memory after len tokens as named tensors; `layer` names them.
  virtual NamedTensors save(int64_t slot, int64_t len, int64_t layer) const = 0;
  // Restores what save() wrote, reading tensors[*next...] and advancing *next.
  virtual void load(int64_t slot, int64_t len, const NamedTensors& tensors, size_t* next) = 0;
};

// Named tensors of shape (S, ...): slot s is the s-th sub-tensor.
class RecurrentState : public LayerState {
 public:
  // shapes: per-slot shape of each named tensor.
  RecurrentState(int64_t slots, const std::vector<std::pair<std::string, Shape>>& shapes);
  float* at(size_t i, int64_t slot);  // start of tensor i's slot
  float* base(size_t i) { return tensors_[i].second.data(); }
  void clear(int64_t slot) override;
  void copy(int64_t src, int64_t dst, int64_t len) override;
  int64_t bytes(int64_t len) const override;
  NamedTensors save(int64_t slot, int64_t len, int64_t layer) const override;
  void load(int64_t slot, int64_t len, const NamedTensors& tensors, size_t* next) override;

 private:
  int64_t slots_;
  NamedTensors tensors_;  // (S, ...) each
};

// Keys and values per slot: (capacity, KV, hd) each, allocated when a slot is first used.
class KvState : public LayerState {
 public:
  KvState(int64_t slots, int64_t capacity, int64_t kv_heads, int64_t head_dim);
  int64_t capacity() const { return cap_; }
  float* k(int64_t slot);  // (capacity, KV, hd)
  float* v(int64_t slot);
  void clear(int64_t) override {}  // the slot's length lives in the pool
  void copy(int64_t src, int64_t dst, int64_t len) override;
  int64_t bytes(int64_t len) const override;
  NamedTensors save(int64_t slot, int64_t len, int64_t layer) const override;
  void load(int64_t slot, int64_t len, const NamedTensors& tensors, size_t* next) override;

 private:
  void ensure(int64_t slot);
  int64_t cap_, kv_, hd_;
  std::vector<Tensor> k_, v_;  // per slot (cap, KV, hd), undefined until used
};

}  // namespace pf
