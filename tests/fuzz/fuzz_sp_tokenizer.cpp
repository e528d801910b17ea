// SentencePiece tokenizer.model: load, then encode and decode.
#include "data/sp_tokenizer.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = pf::fuzz::write_input(data, size, "tokenizer.model");
  pf::fuzz::expect_clean([&] {
    auto t = pf::SentencePieceTokenizer::from_file(path);
    for (int32_t id : t->encode_prompt("Hello world, caf\xc3\xa9 42!")) (void)t->decode_token(id);
  });
  return 0;
}
