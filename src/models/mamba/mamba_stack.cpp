// The stack a Mamba config describes: RMSNorm -> mixer in every layer, no MLP.
#include "models/mamba/mamba.h"
#include "models/mamba/mamba_config.h"
#include "models/mixers/mamba.h"

namespace pf {

Mamba1Spec mamba1_spec(const MambaConfig& c) {
  return Mamba1Spec{c.d_model, c.d_inner(), c.d_state, c.d_conv, c.rank(), c.n_layer};
}

Mamba2Spec mamba2_spec(const MambaConfig& c) {
  return Mamba2Spec{c.d_model, c.d_inner(),  c.d_state, c.d_conv,  c.headdim,
                    c.ngroups, c.chunk_size, c.n_layer, c.norm_eps};
}

StackSpec mamba_stack(const nlohmann::json& j, int version) {
  const MambaConfig c = MambaConfig::from_json(j, version);
  StackSpec s;
  s.arch = version == 2 ? "mamba2" : "mamba";
  s.config = c.to_json();
  s.vocab = c.padded_vocab();
  s.d_model = c.d_model;
  s.norm_eps = c.norm_eps;
  s.tied = c.tie_embeddings;
  s.embedding = c.embedding_name();
  s.final_norm = "backbone.norm_f.weight";
  s.rng_stream = 2;
  const Mamba1Spec m1 = mamba1_spec(c);
  const Mamba2Spec m2 = mamba2_spec(c);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    BlockSpec b;
    b.prefix = "backbone.layers." + std::to_string(l) + ".";
    b.norm = "norm.weight";
    b.mixer_name = "mixer.";
    if (version == 2) {
      set_mixer(b, 'S', m2, make_mamba2_mixer);
    } else {
      set_mixer(b, 'M', m1, make_mamba1_mixer);
    }
    s.layers.push_back(std::move(b));
  }
  return s;
}

}  // namespace pf
