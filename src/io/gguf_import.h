// GGUF models (llama.cpp) as postformer model directories: the llama, mamba and mamba2
// architectures, their hyper-parameters from the metadata, their tensors renamed and
// reshaped to the Hugging Face layout (q/k rows un-permuted, A_log = log(-A)), and the
// tokenizer stored in the file written as tokenizer.json (byte-level BPE) or
// tokenizer.model (SentencePiece).
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "models/lm.h"
#include "tensor/quantize.h"

namespace pf {

struct GgufModel {
  std::string arch;                      // general.architecture
  nlohmann::json config;                 // a Hugging Face config.json for create_model
  std::unique_ptr<LanguageModel> model;  // weights loaded; compact where `weights` says
  WeightFormat weights = WeightFormat::F32;
  // The tokenizer files to write beside the weights: name -> bytes ("tokenizer.json" or
  // "tokenizer.model"); empty when the file has none (then `notes` says why).
  std::vector<std::pair<std::string, std::string>> tokenizer_files;
  std::vector<std::string> notes;  // what a user should know (no tokenizer, padding...)
};

// The weight format a file keeps by default: int8 when its matrices are Q8_0, bf16 when
// they are BF16, else f32 (F16 is widened: bf16 would drop three mantissa bits).
WeightFormat gguf_native_format(const GgufFile& f);

// Reads a GGUF file into a model. `weights` (default: gguf_native_format) is the format of
// the linear and embedding matrices: Q8_0 kept as int8 and BF16 kept as bf16 are copied bit
// for bit; anything else is widened and converted. Errors name the file and the problem.
GgufModel read_gguf_model(const std::string& path, std::optional<WeightFormat> weights = {});

}  // namespace pf
