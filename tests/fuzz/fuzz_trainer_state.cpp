// trainer_state.json of a checkpoint (what --resume reads first).
#include "fuzz/fuzz_util.h"
#include "train/trainer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = pf::fuzz::write_input(data, size, "trainer_state.json");
  pf::fuzz::expect_clean([&] { (void)pf::read_trainer_state(path); });
  return 0;
}
