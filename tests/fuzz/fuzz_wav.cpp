// WAV files: any bytes give audio or a pf::Error, never a crash; good audio gives a log-mel.
#include "data/log_mel.h"
#include "data/wav_file.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  pf::fuzz::expect_clean([&] {
    const pf::WavAudio w = pf::parse_wav(bytes, "fuzz.wav");
    if (w.samples.size() < 20000) (void)pf::log_mel(w.samples, pf::LogMelSpec{}, nullptr);
  });
  return 0;
}
