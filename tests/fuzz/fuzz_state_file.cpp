// --load-state files, against a fixed tiny model of each kind of state (KV cache, recurrent).
#include <cstdlib>
#include <memory>

#include "fuzz/fuzz_util.h"
#include "infer/state_file.h"
#include "models/lm.h"

namespace {
std::unique_ptr<pf::LanguageModel> tiny(const char* type) {
  nlohmann::json c = {{"model_type", type},
                      {"hidden_size", 16},
                      {"num_hidden_layers", 1},
                      {"vocab_size", 32},
                      {"intermediate_size", 32}};
  if (std::string(type) == "llama")
    c.update({{"num_attention_heads", 2}, {"max_position_embeddings", 64}});
  if (std::string(type) == "mamba") c.update({{"state_size", 4}});
  return pf::create_model(c, 1);
}
}  // namespace

std::unique_ptr<pf::LanguageModel> g_transformer, g_mamba;

// PF_FUZZ_WRITE_SEEDS=DIR writes a valid state of each model there (the seed corpus).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_transformer = tiny("llama");
  g_mamba = tiny("mamba");
  if (const char* dir = std::getenv("PF_FUZZ_WRITE_SEEDS")) {
    const int32_t prompt[3] = {1, 2, 3};
    for (auto* m : {g_transformer.get(), g_mamba.get()}) {
      auto s = m->new_session(64);
      s->forward(prompt, 3, false);
      pf::save_session_state(std::string(dir) + "/" + m->arch() + ".state", *m, *s);
    }
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& transformer = g_transformer;
  auto& mamba = g_mamba;
  const std::string path = pf::fuzz::write_input(data, size, "session.state");
  for (pf::LanguageModel* m : {transformer.get(), mamba.get()}) {
    pf::fuzz::expect_clean([&] {
      auto s = m->new_session(64);
      pf::load_session_state(path, *m, *s);
      const int32_t tok = 3;
      if (s->position() < s->capacity()) s->forward(&tok, 1, false);
    });
  }
  return 0;
}
