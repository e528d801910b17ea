#include "apps/compare_sizing.h"

#include <cmath>
#include <cstdio>

#include "apps/model_flags.h"
#include "base/error.h"
#include "models/lm.h"

namespace pf::cli {

namespace {

ModelFlags base_flags(const std::string& label, int64_t vocab, int64_t max_context) {
  ModelFlags f;
  f.arch = label;
  f.vocab = vocab;
  f.context = max_context;
  f.heads = 4;
  if (label == "mamba2") f.headdim = 32;  // small widths: d_inner = 2 d must split into heads
  return f;
}

// Layers of the Mamba-style stacks: a Mamba block has about half the weights of an
// attention block plus its MLP, so twice as many keep the depth comparable.
bool mamba_style(const std::string& label) {
  return label == "mamba" || label == "mamba2" || label == "hybrid";
}

std::string hybrid_pattern(int64_t layers) {
  // Jamba's ratio: one attention layer among Mamba layers, in the middle of the stack.
  std::string p(layers, 'M');
  p[layers / 2] = 'A';
  return p;
}

int64_t count(const ModelFlags& f) { return config_param_count(f.config()); }

}  // namespace

std::vector<std::string> compare_arch_labels() {
  return {"transformer", "mamba", "mamba2", "retnet", "hybrid", "perceiver-ar"};
}

int64_t loss_step_factor(const SizedArch& arch, int64_t seq) {
  if (!arch.config.contains("num_latents")) return 1;
  const int64_t m = std::min(seq, arch.config["num_latents"].get<int64_t>());
  return (seq + m - 1) / m;
}

SizedArch size_arch(const std::string& label, int64_t budget, int64_t depth, int64_t vocab,
                    int64_t max_context, int64_t window, int64_t latents) {
  bool known = false;
  std::string names;
  for (const std::string& l : compare_arch_labels()) {
    known |= l == label;
    names += (names.empty() ? "" : ", ") + l;
  }
  PF_CHECK(known, "--archs: unknown architecture '", label, "' (known: ", names, ")");
  ModelFlags f = base_flags(label, vocab, max_context);
  if (label == "perceiver-ar") {
    f.context = window > 0 ? window : max_context;
    f.latents = latents > 0 ? std::min(latents, f.context) : std::max<int64_t>(1, f.context / 4);
  }
  const int64_t step = label == "mamba2" ? 16 : 8;
  const int64_t base_layers = mamba_style(label) ? 2 * depth : depth;
  double best_err = 1e300;
  ModelFlags best = f;
  for (int64_t layers : {base_layers, base_layers - 1, base_layers + 1}) {
    if (layers < 1) continue;
    for (int64_t d = 32; d <= 4096; d += step) {
      ModelFlags c = f;
      c.d_model = d;
      c.layers = layers;
      if (label == "hybrid") c.pattern = hybrid_pattern(layers);
      const int64_t p = count(c);
      // Prefer the planned depth: another one only when it is clearly closer.
      const double err =
          std::abs(static_cast<double>(p - budget)) / budget + (layers == base_layers ? 0.0 : 0.01);
      if (err < best_err) best_err = err, best = c;
      if (p > budget) break;
    }
    if (best_err < 0.02) break;
  }
  if (label == "transformer" || label == "retnet" || label == "perceiver-ar") {
    // The MLP width closes most of the remaining gap.
    const int64_t ffn0 = ((best.d_model * 8 / 3 + 7) / 8) * 8;
    ModelFlags tuned = best;
    double tuned_err = 1e300;
    for (int64_t ffn = ffn0 * 3 / 4 / 8 * 8; ffn <= ffn0 * 5 / 4; ffn += 8) {
      ModelFlags c = best;
      c.ffn = ffn;
      const double err = std::abs(static_cast<double>(count(c) - budget)) / budget;
      if (err < tuned_err) tuned_err = err, tuned = c;
    }
    best = tuned;
  }
  SizedArch s;
  s.label = label;
  s.config = best.config();
  s.params = count(best);
  const double err = std::abs(static_cast<double>(s.params - budget)) / budget;
  PF_CHECK(err <= 0.05, label, ": no shape lands within 5% of ", budget,
           " parameters (closest: ", s.params, "); choose another --params or --depth");
  char buf[160];
  if (label == "perceiver-ar")
    std::snprintf(buf, sizeof buf,
                  "d_model %ld, 1 cross + %ld self layers, MLP %ld, %ld of %ld latent",
                  static_cast<long>(best.d_model), static_cast<long>(best.layers - 1),
                  static_cast<long>(s.config["intermediate_size"]), static_cast<long>(best.latents),
                  static_cast<long>(best.context));
  else if (label == "transformer" || label == "retnet")
    std::snprintf(buf, sizeof buf, "d_model %ld, %ld layers, %ld heads, MLP %ld",
                  static_cast<long>(best.d_model), static_cast<long>(best.layers),
                  static_cast<long>(best.heads), static_cast<long>(s.config["intermediate_size"]));
  else if (label == "hybrid")
    std::snprintf(buf, sizeof buf, "d_model %ld, pattern %s (A attention, M Mamba)",
                  static_cast<long>(best.d_model), best.pattern.c_str());
  else
    std::snprintf(buf, sizeof buf, "d_model %ld, %ld layers, d_state %ld",
                  static_cast<long>(best.d_model), static_cast<long>(best.layers),
                  static_cast<long>(s.config["state_size"]));
  s.summary = buf;
  return s;
}

}  // namespace pf::cli
