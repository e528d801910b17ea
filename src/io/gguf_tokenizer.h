// The tokenizer a GGUF file stores (tokenizer.ggml.*) as the files our tokenizers load:
// "gpt2" (byte-level BPE: tokens + merges) becomes a Hugging Face tokenizer.json, "llama"
// (SentencePiece: tokens + scores + token types) a SentencePiece tokenizer.model, written in
// protobuf wire format by hand (Debian ships libsentencepiece without the .proto headers).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "io/gguf.h"

namespace pf {

// {file name, bytes} to write beside the weights; {} with a note in `notes` when the file
// has no tokenizer or one we cannot rebuild. Malformed tokenizer metadata is an error.
std::vector<std::pair<std::string, std::string>> gguf_tokenizer_files(
    const GgufFile& f, std::vector<std::string>& notes);

}  // namespace pf
