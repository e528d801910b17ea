#include "io/gguf_import.h"

#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "base/error.h"
#include "io/gguf_tokenizer.h"
#include "models/compact_weights.h"

namespace pf {

namespace {
using nlohmann::json;

// How a GGUF tensor becomes the Hugging Face one, besides taking the parameter's shape.
enum class Fix {
  kNone,
  kUnpermute,  // llama q/k rows: GGUF interleaves each head's rotary halves
  kLogNeg,     // mamba A: GGUF stores A = -exp(A_log)
};

struct Source {
  std::string gguf;
  Fix fix = Fix::kNone;
  int64_t heads = 0;  // kUnpermute
};

std::string layer(int64_t l, const std::string& name) {
  return "blk." + std::to_string(l) + "." + name;
}

int64_t positive(const GgufFile& f, const std::string& key) {
  const int64_t v = f.int_at(key);
  PF_CHECK(v > 0 && v <= (int64_t{1} << 24), f.path(), ": metadata key '", key, "' is ", v);
  return v;
}

// config.json and the HF name -> GGUF tensor map of a llama file.
json llama_config(const GgufFile& f, int64_t vocab, std::map<std::string, Source>& src) {
  const std::string a = "llama.";
  const int64_t d = positive(f, a + "embedding_length"), L = positive(f, a + "block_count");
  const int64_t heads = positive(f, a + "attention.head_count");
  const int64_t kv = f.int_or(a + "attention.head_count_kv", heads);
  PF_CHECK(kv > 0 && heads % kv == 0, f.path(), ": ", heads, " attention heads cannot share ",
           kv, " key/value heads");
  const int64_t head_dim = f.int_or(a + "attention.key_length", d / heads);
  PF_CHECK(f.int_or(a + "attention.value_length", head_dim) == head_dim, f.path(),
           ": key and value head sizes differ (not a llama layout)");
  PF_CHECK(f.int_or(a + "rope.dimension_count", head_dim) == head_dim, f.path(),
           ": rotary embedding covers ", f.int_at(a + "rope.dimension_count"), " of ", head_dim,
           " head dimensions (partial rotary is not supported)");
  const std::string scaling = f.string_or(a + "rope.scaling.type", "none");
  PF_CHECK(scaling == "none" && !f.has("rope_freqs.weight"), f.path(),
           ": rope scaling '", scaling == "none" ? "llama3 (rope_freqs)" : scaling,
           "' is not supported");
  const bool tied = !f.has("output.weight");
  json c = {{"model_type", "llama"},
            {"architectures", {"LlamaForCausalLM"}},
            {"hidden_size", d},
            {"num_hidden_layers", L},
            {"intermediate_size", positive(f, a + "feed_forward_length")},
            {"num_attention_heads", heads},
            {"num_key_value_heads", kv},
            {"head_dim", head_dim},
            {"rms_norm_eps", f.float_or(a + "attention.layer_norm_rms_epsilon", 1e-5)},
            {"rope_theta", f.float_or(a + "rope.freq_base", 10000.0)},
            {"max_position_embeddings", f.int_or(a + "context_length", 2048)},
            {"vocab_size", vocab},
            {"tie_word_embeddings", tied},
            {"attention_bias", f.has(layer(0, "attn_q.bias"))}};
  src["model.embed_tokens.weight"] = {"token_embd.weight"};
  src["model.norm.weight"] = {"output_norm.weight"};
  if (!tied) src["lm_head.weight"] = {"output.weight"};
  for (int64_t l = 0; l < L; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    src[p + "input_layernorm.weight"] = {layer(l, "attn_norm.weight")};
    src[p + "post_attention_layernorm.weight"] = {layer(l, "ffn_norm.weight")};
    for (const char* b : {"weight", "bias"}) {
      const std::string s = std::string(".") + b;
      src[p + "self_attn.q_proj" + s] = {layer(l, "attn_q" + s), Fix::kUnpermute, heads};
      src[p + "self_attn.k_proj" + s] = {layer(l, "attn_k" + s), Fix::kUnpermute, kv};
      src[p + "self_attn.v_proj" + s] = {layer(l, "attn_v" + s)};
      src[p + "self_attn.o_proj" + s] = {layer(l, "attn_output" + s)};
    }
    src[p + "mlp.gate_proj.weight"] = {layer(l, "ffn_gate.weight")};
    src[p + "mlp.up_proj.weight"] = {layer(l, "ffn_up.weight")};
    src[p + "mlp.down_proj.weight"] = {layer(l, "ffn_down.weight")};
  }
  return c;
}

// Mamba-1 and Mamba-2 share the block layout; Mamba-2 adds heads, groups and a gated norm.
json mamba_config(const GgufFile& f, const std::string& arch, int64_t vocab,
                  std::map<std::string, Source>& src) {
  const std::string a = arch + ".";
  const int64_t d = positive(f, a + "embedding_length"), L = positive(f, a + "block_count");
  const int64_t inner = positive(f, a + "ssm.inner_size");
  PF_CHECK(inner % d == 0, f.path(), ": ssm.inner_size ", inner,
           " is not a multiple of the embedding length ", d);
  PF_CHECK(!f.has_key(a + "ssm.dt_b_c_rms") || !f.at(a + "ssm.dt_b_c_rms").get<bool>(), f.path(),
           ": dt/B/C RMS norms (Falcon Mamba) are not supported");
  const bool tied = !f.has("output.weight");
  json c = {{"model_type", arch},
            {"hidden_size", d},
            {"num_hidden_layers", L},
            {"state_size", positive(f, a + "ssm.state_size")},
            {"expand", inner / d},
            {"intermediate_size", inner},
            {"conv_kernel", positive(f, a + "ssm.conv_kernel")},
            {"layer_norm_epsilon", f.float_or(a + "attention.layer_norm_rms_epsilon", 1e-5)},
            {"vocab_size", vocab},
            {"tie_word_embeddings", tied},
            {"use_bias", f.has(layer(0, "ssm_in.bias"))},
            {"use_conv_bias", f.has(layer(0, "ssm_conv1d.bias"))}};
  const int64_t rank = positive(f, a + "ssm.time_step_rank");
  if (arch == "mamba") {
    c["time_step_rank"] = rank;
  } else {
    PF_CHECK(inner % rank == 0, f.path(), ": ", rank, " heads do not divide ", inner);
    c["head_dim"] = inner / rank;
    c["n_groups"] = f.int_or(a + "ssm.group_count", 1);
    c["chunk_size"] = 256;
  }
  src["backbone.embeddings.weight"] = {"token_embd.weight"};
  src["backbone.norm_f.weight"] = {"output_norm.weight"};
  if (!tied) src["lm_head.weight"] = {"output.weight"};
  for (int64_t l = 0; l < L; ++l) {
    const std::string p = "backbone.layers." + std::to_string(l) + ".";
    const std::string m = p + "mixer.";
    src[p + "norm.weight"] = {layer(l, "attn_norm.weight")};
    src[m + "in_proj.weight"] = {layer(l, "ssm_in.weight")};
    src[m + "in_proj.bias"] = {layer(l, "ssm_in.bias")};
    src[m + "conv1d.weight"] = {layer(l, "ssm_conv1d.weight")};
    src[m + "conv1d.bias"] = {layer(l, "ssm_conv1d.bias")};
    src[m + "A_log"] = {layer(l, "ssm_a"), Fix::kLogNeg};
    src[m + "D"] = {layer(l, "ssm_d")};
    src[m + "out_proj.weight"] = {layer(l, "ssm_out.weight")};
    src[m + "out_proj.bias"] = {layer(l, "ssm_out.bias")};
    if (arch == "mamba") {
      src[m + "x_proj.weight"] = {layer(l, "ssm_x.weight")};
      src[m + "dt_proj.weight"] = {layer(l, "ssm_dt.weight")};
      src[m + "dt_proj.bias"] = {layer(l, "ssm_dt.bias")};
    } else {
      src[m + "dt_bias"] = {layer(l, "ssm_dt.bias")};
      src[m + "norm.weight"] = {layer(l, "ssm_norm.weight")};
    }
  }
  return c;
}

// Row r of the Hugging Face matrix is row perm[r] of the GGUF one: within each head, GGUF
// orders the rows (0, hd/2, 1, hd/2 + 1, ...), HF (0, 1, ..., hd/2 - 1, hd/2, ...).
std::vector<int64_t> unpermute_rows(int64_t rows, int64_t heads, const std::string& what) {
  PF_CHECK(heads > 0 && rows % heads == 0 && (rows / heads) % 2 == 0, what, ": ", rows,
           " rows do not split into ", heads, " heads of even size");
  const int64_t hd = rows / heads, half = hd / 2;
  std::vector<int64_t> perm(rows);
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t j = 0; j < 2; ++j)
      for (int64_t i = 0; i < half; ++i) perm[h * hd + j * half + i] = h * hd + 2 * i + j;
  return perm;
}

// t with its rows reordered (out row r = t row perm[r]); any dtype, scales follow their rows.
Tensor permute_rows(const Tensor& t, const std::vector<int64_t>& perm) {
  const int64_t rows = t.size(0), cols = t.numel() / rows;
  Tensor out = Tensor::empty_typed(t.shape(), t.dtype(), t.group());
  const size_t row_bytes = static_cast<size_t>(cols) * dtype_size(t.dtype());
  const auto* in = static_cast<const uint8_t*>(t.raw());
  auto* o = static_cast<uint8_t*>(out.raw());
  for (int64_t r = 0; r < rows; ++r) std::memcpy(o + r * row_bytes, in + perm[r] * row_bytes, row_bytes);
  if (t.dtype() == DType::Q8) {
    const int64_t g = cols / t.group();
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(out.q8_scales() + r * g, t.q8_scales() + perm[r] * g, g * sizeof(float));
  }
  return out;
}

// The GGUF tensor as the parameter `p` (name `name`) holds it, in format `want` for matrices.
Tensor convert(const GgufFile& f, const Source& s, const std::string& name, const Var& p,
               bool matrix, WeightFormat want) {
  const GgufTensorInfo& info = f.info(s.gguf);
  const std::string what = f.path() + ": tensor '" + s.gguf + "' (for " + name + ")";
  PF_CHECK(shape_numel(info.shape) == p.value().numel(), what, " has shape ",
           shape_str(info.shape), ", but the model needs ", shape_str(p.shape()));
  // Matrices keep their layout exactly; only vectors and conv kernels get reshaped (GGUF
  // squeezes conv1d to (channels, width) and unsqueezes Mamba-2's A and D to (heads, 1)).
  PF_CHECK(!matrix || info.shape == p.shape(), what, " has shape ", shape_str(info.shape),
           ", but the model needs ", shape_str(p.shape()));
  const bool keep = matrix && ((want == WeightFormat::Int8 && info.type == 8) ||
                               (want == WeightFormat::BF16 && info.type == 30));
  Tensor t = keep ? f.load_compact(s.gguf) : f.load_f32(s.gguf);
  if (s.fix == Fix::kUnpermute) t = permute_rows(t, unpermute_rows(t.size(0), s.heads, what));
  if (s.fix == Fix::kLogNeg) {
    float* v = t.data();
    for (int64_t i = 0; i < t.numel(); ++i) {
      PF_CHECK(v[i] < 0.0f, what, ": A[", i, "] = ", v[i], " (A = -exp(A_log) must be negative)");
      v[i] = std::log(-v[i]);
    }
  }
  if (t.dtype() == DType::F32) {
    t = t.view(p.shape());
    if (matrix && want != WeightFormat::F32) t = convert_weight(t, want);
  }
  return t;
}
}  // namespace

WeightFormat gguf_native_format(const GgufFile& f) {
  for (const GgufTensorInfo& t : f.tensors()) {
    if (t.shape.size() != 2) continue;
    if (t.type == 8) return WeightFormat::Int8;
    if (t.type == 30) return WeightFormat::BF16;
  }
  return WeightFormat::F32;
}

GgufModel read_gguf_model(const std::string& path, std::optional<WeightFormat> weights) {
  GgufFile f(path);
  GgufModel g;
  g.arch = f.string_or("general.architecture", "");
  PF_CHECK(!g.arch.empty(), path, ": no general.architecture key");
  g.weights = weights ? *weights : gguf_native_format(f);
  const GgufTensorInfo& emb = f.info("token_embd.weight");
  PF_CHECK(emb.shape.size() == 2, path, ": token_embd.weight is not a matrix");
  const int64_t vocab = emb.shape[0];
  std::map<std::string, Source> src;
  if (g.arch == "llama")
    g.config = llama_config(f, vocab, src);
  else if (g.arch == "mamba" || g.arch == "mamba2")
    g.config = mamba_config(f, g.arch, vocab, src);
  else
    fail(path, ": architecture '", g.arch, "' is not supported (llama, mamba and mamba2 are)");
  try {
    g.model = create_model(g.config, 0);
  } catch (const Error& e) {
    fail(path, ": the metadata describes a model that cannot be built: ", e.what());
  }
  std::set<std::string> used;
  g.model->visit_params([&](const std::string& name, Var& p, ParamKind kind) {
    auto it = src.find(name);
    PF_CHECK(it != src.end(), path, ": the ", g.arch, " model has a parameter '", name,
             "' that no GGUF tensor maps to");
    PF_CHECK(f.has(it->second.gguf), path, ": missing tensor '", it->second.gguf, "' (for ",
             name, ")");
    const bool matrix = is_compact_candidate(p, kind);
    p.value() = convert(f, it->second, name, p, matrix, g.weights);
    if (matrix && g.weights != WeightFormat::F32) p.set_requires_grad(false);
    used.insert(it->second.gguf);
  });
  for (const GgufTensorInfo& t : f.tensors())
    PF_CHECK(used.count(t.name), path, ": unexpected tensor '", t.name, "' (block_count ",
             g.config["num_hidden_layers"].get<int64_t>(), " does not describe it)");
  g.tokenizer_files = gguf_tokenizer_files(f, g.notes);
  return g;
}

}  // namespace pf
