// config.json of every architecture: validation and the parameter count must refuse
// anything unbuildable; a small valid config is built, written back and run for a few tokens.
#include "fuzz/fuzz_util.h"
#include "io/config_json.h"
#include "models/lm.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = pf::fuzz::write_input(data, size, "config.json");
  pf::fuzz::expect_clean([&] {
    const nlohmann::json cfg = pf::read_json_file(path);
    const int64_t params = pf::config_param_count(cfg);
    if (params > 200000) return;  // valid but too large to build at fuzzing speed
    auto m = pf::create_model(cfg, 1);
    if (m->num_params() != params) std::abort();  // the count must be exact
    // The config it saves describes the same model, and a few tokens run through a session.
    if (pf::config_param_count(m->config_json()) != params) std::abort();
    (void)m->state_bytes(16);
    auto s = m->new_session(8);
    const int32_t ids[3] = {0, 0, 0};
    s->forward(ids, 2, true);
    s->forward(ids, 1, false);
  });
  return 0;
}
