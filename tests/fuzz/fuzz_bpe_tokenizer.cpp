// Hugging Face tokenizer.json: load, then encode and decode.
#include "data/bpe_tokenizer.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = pf::fuzz::write_input(data, size, "tokenizer.json");
  pf::fuzz::expect_clean([&] {
    auto t = pf::BpeTokenizer::from_file(path);
    const std::vector<int32_t> ids = t->encode("Hello world, hello <|endoftext|> caf\xc3\xa9 42!");
    for (int32_t id : ids) (void)t->decode_token(id);
    for (int64_t id = 0; id < std::min<int64_t>(t->vocab_size(), 4096); ++id) {
      try {
        (void)t->decode_token(static_cast<int32_t>(id));
      } catch (const pf::Error&) {  // a hole in the vocabulary
      }
    }
    (void)t->unused_ids();
  });
  return 0;
}
