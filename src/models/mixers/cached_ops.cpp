#include "models/mixers/cached_ops.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "base/error.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_decode.h"
#include "kernels/cpu/conv1d_causal.h"

namespace pf {

Var conv1d_cached(const Var& x, int64_t C, int64_t K, const Var& w, const Var& bias,
                  RecurrentState& state, size_t which, const SeqBatch& batch) {
  Var y(Tensor::empty({batch.rows(), C}));  // (rows, C)
  for (const RowGroup& g : batch.groups()) {
    const float* xg = x.data() + g.row0 * C;
    float* yg = y.data() + g.row0 * C;
    if (g.decode) {
      cpu::conv1d_causal_step(g.rows, C, K, xg, w.data(), bias.data(), state.base(which), yg,
                              g.slots.data());
    } else {
      float* slot = state.at(which, g.slots[0]);
      const std::vector<float> prev(slot, slot + C * K);
      cpu::conv1d_causal_fwd(1, g.rows, C, K, xg, w.data(), bias.data(), prev.data(), yg, slot);
    }
  }
  return y;
}

Var attention_cached(const Var& q, const Var& k, const Var& v, int64_t H, int64_t KV, int64_t hd,
                     const SeqBatch& batch, KvState& kv) {
  Var a(Tensor::empty({batch.rows(), H * hd}));  // (rows, H*hd)
  const auto& runs = batch.runs();
  const int64_t kvd = KV * hd;
  for (size_t i = 0; i < runs.size(); ++i) {  // append every run's keys and values first
    const SeqRun& r = runs[i];
    const int64_t r0 = batch.row0(i);
    PF_CHECK(r.pos + r.len <= kv.capacity(), "context full: ", r.pos + r.len,
             " tokens exceed the KV cache of ", kv.capacity());
    std::memcpy(kv.k(r.slot) + r.pos * kvd, k.data() + r0 * kvd, r.len * kvd * sizeof(float));
    std::memcpy(kv.v(r.slot) + r.pos * kvd, v.data() + r0 * kvd, r.len * kvd * sizeof(float));
  }
  for (const RowGroup& g : batch.groups()) {
    const float* qg = q.data() + g.row0 * H * hd;
    float* ag = a.data() + g.row0 * H * hd;
    if (g.decode) {  // all decode rows of the group in one call
      std::vector<const float*> ks(g.rows), vs(g.rows);
      std::vector<int64_t> tk(g.rows);
      for (int64_t j = 0; j < g.rows; ++j) {
        ks[j] = kv.k(g.slots[j]);
        vs[j] = kv.v(g.slots[j]);
        tk[j] = g.positions[j] + 1;
      }
      const cpu::AttnDecodeShape s{g.rows, H, KV, hd, 1.0f / std::sqrt(static_cast<float>(hd))};
      cpu::attention_decode(s, qg, ks.data(), vs.data(), tk.data(), ag);
    } else {
      const int64_t pos = g.positions[0];
      const cpu::AttnShape s = cpu::attn_shape(1, g.rows, pos + g.rows, H, KV, hd, pos);
      cpu::attention_fwd(s, qg, kv.k(g.slots[0]), kv.v(g.slots[0]), ag, nullptr);
    }
  }
  return a;
}

}  // namespace pf
