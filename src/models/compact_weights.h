// Low-precision inference weights for any model: every linear and embedding matrix (2-D
// Matrix and Embedding parameters) converted to bf16 or int8; norms, biases, convolution
// taps, A_log/D and everything a layer keeps as state stay f32.
#pragma once
#include <cstdint>
#include <string>

#include "models/model.h"
#include "tensor/quantize.h"

namespace pf {

// True for the parameters that low-precision formats convert.
bool is_compact_candidate(const Var& p, ParamKind kind);

// Converts m's matrices to `f`, in place (their f32 storage is freed). Matrices already in a
// compact format are widened first, so any format can be asked for any model. Returns the
// number of matrices converted.
int64_t convert_weights(Model& m, WeightFormat f);

// The format m's matrices are in: the one of its first candidate (all share it).
WeightFormat model_weight_format(Model& m);
// Bytes every parameter occupies in memory (int8 includes its scales).
int64_t model_weight_bytes(Model& m);

// The config.json entry that says how a directory was quantised, and its reader: absent
// means f32. {"weights": "bf16"|"int8", "group_size": 32 (int8), "method": "postformer"}.
nlohmann::json quantization_config(Model& m);
WeightFormat quantization_from_config(const nlohmann::json& cfg, const std::string& where);

// Suffix of the tensor holding an int8 matrix's scales in safetensors: "<name>_scale",
// shape (rows, cols / group_size).
inline const char* kScaleSuffix = "_scale";

}  // namespace pf
