// postformer's own hybrid config: one mixer per layer by pattern or layer_types.
#include <cmath>
#include <tuple>
#include <vector>

#include "base/checks.h"
#include "base/error.h"
#include "io/config_json.h"
#include "models/hybrid/hybrid.h"
#include "models/limits.h"
#include "models/mixers/attention.h"
#include "models/mixers/mamba.h"
#include "models/mixers/retention.h"

namespace pf {

char layer_letter(const std::string& t) {
  if (t == "attention") return 'A';
  if (t == "mamba") return 'M';
  if (t == "mamba2") return 'S';
  if (t == "retention") return 'R';
  fail("config: layer type '", t, "' is not one of attention, mamba, mamba2, retention");
}

namespace {

nlohmann::json sub(const nlohmann::json& j, const char* key) {
  if (!j.contains(key)) return nlohmann::json::object();
  PF_CHECK(j[key].is_object(), "config: ", key, " must be an object");
  return j[key];
}

// The layer letters, from whichever of the three keys the config has.
std::string read_pattern(const nlohmann::json& j) {
  const int keys =
      j.contains("pattern") + j.contains("layer_types") + j.contains("hybrid_override_pattern");
  PF_CHECK(keys == 1, "config: give exactly one of pattern, layer_types, hybrid_override_pattern");
  std::string p;
  if (j.contains("layer_types")) {
    PF_CHECK(j["layer_types"].is_array(), "config: layer_types must be a list of names");
    for (const auto& t : j["layer_types"]) {
      PF_CHECK(t.is_string(), "config: layer_types entries must be strings");
      p += layer_letter(t.get<std::string>());
    }
  } else if (j.contains("hybrid_override_pattern")) {
    for (char c : json_str(j, "hybrid_override_pattern", "")) {
      PF_CHECK(c == 'M' || c == '*', "config: hybrid_override_pattern letter '", c,
               "' is not supported (M Mamba-2, * attention; MLP-only layers '-' are not)");
      p += c == 'M' ? 'S' : 'A';
    }
  } else {
    p = json_str(j, "pattern", "");
    for (char& c : p) {
      if (c == '*') c = 'A';
      PF_CHECK(c == 'A' || c == 'M' || c == 'S' || c == 'R', "config: pattern letter '", c,
               "' is not one of A (attention), M (Mamba-1), S (Mamba-2), R (retention)");
    }
  }
  PF_CHECK(!p.empty(), "config: the layer pattern is empty");
  check_range("config: layers in the pattern", static_cast<int64_t>(p.size()), 1, kMaxLayers);
  return p;
}

}  // namespace

StackSpec hybrid_stack(const nlohmann::json& j) {
  PF_CHECK(j.is_object(), "config must be a JSON object");
  if (is_state_spaces_hybrid(j)) return state_spaces_hybrid_stack(j);
  const std::string pattern = read_pattern(j);
  const int64_t L = static_cast<int64_t>(pattern.size());
  const int64_t d = json_int(j, "hidden_size"), V = json_int(j, "vocab_size");
  check_range("config: hidden_size", d, 1, kMaxWidth);
  check_range("config: vocab_size", V, 1, kMaxVocab);
  if (j.contains("num_hidden_layers"))
    PF_CHECK(json_int(j, "num_hidden_layers") == L, "config: num_hidden_layers ",
             json_int(j, "num_hidden_layers"), " differs from the ", L, " layers of the pattern");
  const int64_t ffn = json_int(j, "intermediate_size", 0);
  check_range("config: intermediate_size", ffn, 0, kMaxFfn);
  const double eps = json_num(j, "rms_norm_eps", 1e-5);
  check_range("config: rms_norm_eps", eps, 0.0, 1.0, /*open_lo=*/true);
  const bool tied = json_bool(j, "tie_word_embeddings", true);
  const float out_std = 0.02f / std::sqrt(2.0f * L);

  // Attention
  AttentionSpec a;
  a.d = d;
  a.heads = json_int(j, "num_attention_heads", std::max<int64_t>(1, d / 64));
  a.kv_heads = json_int(j, "num_key_value_heads", a.heads);
  const double theta = json_num(j, "rope_theta", 10000.0);
  const int64_t max_pos = json_int(j, "max_position_embeddings", 2048);
  check_range("config: num_attention_heads", a.heads, 1, d);
  check_range("config: num_key_value_heads", a.kv_heads, 1, a.heads);
  check_range("config: rope_theta", theta, 0.0, 1e12, /*open_lo=*/true);
  check_range("config: max_position_embeddings", max_pos, 1, kMaxPositions);
  const bool has_attention = pattern.find('A') != std::string::npos;
  PF_CHECK(
      !has_attention || (d % a.heads == 0 && a.heads % a.kv_heads == 0 && (d / a.heads) % 2 == 0),
      "config: hidden_size / num_attention_heads must be an even head dim and "
      "num_attention_heads a multiple of num_key_value_heads");
  a.head_dim = std::max<int64_t>(2, d / a.heads);
  a.rope = cpu::RopeStyle{static_cast<float>(theta), false, false};
  a.out_std = out_std;

  // Mamba-1 and Mamba-2
  const nlohmann::json m1j = sub(j, "mamba"), m2j = sub(j, "mamba2"), rj = sub(j, "retention");
  const int64_t e1 = json_int(m1j, "expand", 2), e2 = json_int(m2j, "expand", 2);
  check_range("config: mamba.expand", e1, 1, 64);
  check_range("config: mamba2.expand", e2, 1, 64);
  Mamba1Spec m1;
  m1.d = d;
  m1.d_inner = e1 * d;
  m1.d_state = json_int(m1j, "d_state", 16);
  m1.d_conv = json_int(m1j, "d_conv", 4);
  m1.dt_rank = json_int(m1j, "dt_rank", (d + 15) / 16);
  m1.n_layer = L;
  Mamba2Spec m2;
  m2.d = d;
  m2.d_inner = e2 * d;
  m2.d_state = json_int(m2j, "d_state", 64);
  m2.d_conv = json_int(m2j, "d_conv", 4);
  m2.headdim = json_int(m2j, "headdim", 64);
  m2.ngroups = json_int(m2j, "ngroups", 1);
  m2.chunk = json_int(m2j, "chunk_size", 256);
  m2.n_layer = L;
  m2.norm_eps = eps;
  for (const auto& [name, v, hi] : std::vector<std::tuple<const char*, int64_t, int64_t>>{
           {"mamba.expand * hidden_size", m1.d_inner, kMaxFfn},
           {"mamba.d_state", m1.d_state, 1 << 12},
           {"mamba.d_conv", m1.d_conv, 1 << 10},
           {"mamba.dt_rank", m1.dt_rank, kMaxWidth},
           {"mamba2.expand * hidden_size", m2.d_inner, kMaxFfn},
           {"mamba2.d_state", m2.d_state, 1 << 12},
           {"mamba2.d_conv", m2.d_conv, 1 << 10},
           {"mamba2.headdim", m2.headdim, kMaxWidth},
           {"mamba2.ngroups", m2.ngroups, kMaxWidth},
           {"mamba2.chunk_size", m2.chunk, 1 << 16}})
    check_range(std::string("config: ") + name, v, 1, hi);
  if (pattern.find('S') != std::string::npos)
    PF_CHECK(m2.d_inner % m2.headdim == 0 && m2.nheads() % m2.ngroups == 0,
             "config: mamba2 d_inner ", m2.d_inner, " must split into heads of ", m2.headdim,
             " in ", m2.ngroups, " groups");

  // Retention (torchscale variant)
  RetentionSpec r;
  r.d = d;
  r.heads = json_int(rj, "num_heads", a.heads);
  check_range("config: retention.num_heads", r.heads, 1, d);
  const double ev = json_num(rj, "expand_v", 2.0);
  check_range("config: retention.expand_v", ev, 0.0, 16.0, /*open_lo=*/true);
  r.head_k = d / r.heads;
  r.head_v = static_cast<int64_t>(d * ev) / r.heads;
  if (pattern.find('R') != std::string::npos)
    PF_CHECK(d % r.heads == 0 && r.head_k % 2 == 0 && r.head_v > 0 &&
                 static_cast<int64_t>(d * ev) % r.heads == 0,
             "config: retention heads must divide hidden_size into even key dims and the value "
             "dim expand_v * hidden_size");
  r.chunk = json_int(rj, "chunk", 64);
  check_range("config: retention.chunk", r.chunk, 1, 1 << 16);
  r.head_norm_eps = json_num(rj, "head_norm_eps", 1e-6);
  check_range("config: retention.head_norm_eps", r.head_norm_eps, 0.0, 1.0);
  const nlohmann::json decay = rj.contains("decay") ? rj["decay"] : nlohmann::json("torchscale");
  r.gammas = parse_retention_decay(decay, r.heads, "retention.decay");
  const std::string prefill = json_str(rj, "prefill", "chunkwise");
  r.prefill = parse_retention_prefill(prefill, "retention.prefill");
  r.rope_theta = theta;
  r.out_std = out_std;

  StackSpec s;
  s.arch = "hybrid";
  s.vocab = V;
  s.d_model = d;
  s.norm_eps = eps;
  s.tied = tied;
  s.embedding = "model.embed_tokens.weight";
  s.final_norm = "model.norm.weight";
  s.rng_stream = 4;
  s.max_context = pattern.find('A') != std::string::npos ? max_pos : kUnboundedContext;
  for (int64_t l = 0; l < L; ++l) {
    const char c = pattern[l];
    BlockSpec b;
    b.prefix = "model.layers." + std::to_string(l) + ".";
    b.norm = "norm.weight";
    b.mixer_name = "mixer.";
    switch (c) {
      case 'A':
        set_mixer(b, c, a, make_attention);
        break;
      case 'M':
        set_mixer(b, c, m1, make_mamba1_mixer);
        break;
      case 'S':
        set_mixer(b, c, m2, make_mamba2_mixer);
        break;
      default:
        set_mixer(b, c, r, make_retention);
    }
    if (ffn > 0)
      b.mlp = MlpSpec{MlpLayout::Separate,
                      ffn,
                      "mlp_norm.weight",
                      "mlp.gate_proj.weight",
                      "mlp.up_proj.weight",
                      "mlp.down_proj.weight",
                      0.02f,
                      out_std};
    s.layers.push_back(std::move(b));
  }
  nlohmann::json out = j;
  out.erase("layer_types");  // one source of truth: the pattern
  out.erase("pattern");
  out.erase("hybrid_override_pattern");
  out.update(nlohmann::json{{"model_type", "postformer_hybrid"},
                            {"pattern", pattern},
                            {"num_hidden_layers", L},
                            {"hidden_size", d},
                            {"vocab_size", V},
                            {"intermediate_size", ffn},
                            {"rms_norm_eps", eps},
                            {"tie_word_embeddings", tied},
                            {"num_attention_heads", a.heads},
                            {"num_key_value_heads", a.kv_heads},
                            {"rope_theta", theta},
                            {"max_position_embeddings", max_pos},
                            {"mamba",
                             {{"expand", m1.d_inner / d},
                              {"d_state", m1.d_state},
                              {"d_conv", m1.d_conv},
                              {"dt_rank", m1.dt_rank}}},
                            {"mamba2",
                             {{"expand", m2.d_inner / d},
                              {"d_state", m2.d_state},
                              {"d_conv", m2.d_conv},
                              {"headdim", m2.headdim},
                              {"ngroups", m2.ngroups},
                              {"chunk_size", m2.chunk}}},
                            {"retention",
                             {{"num_heads", r.heads},
                              {"expand_v", ev},
                              {"chunk", r.chunk},
                              {"head_norm_eps", r.head_norm_eps},
                              {"decay", decay},
                              {"prefill", prefill}}}});
  s.config = out;
  return s;
}

}  // namespace pf
