// Text and token-id data files: UTF-8 validation, byte encoding, id parsing.
#include "data/corpus.h"
#include "data/tokenizer.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = pf::fuzz::write_input(data, size, "data.txt");
  pf::fuzz::expect_clean([&] { (void)pf::read_token_file(path); });
  pf::fuzz::expect_clean([&] {
    const std::string text = pf::read_text_file(path);
    pf::ByteTokenizer tok;
    (void)tok.encode(text);
  });
  return 0;
}
