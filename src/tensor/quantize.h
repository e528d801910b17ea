// Compact weight formats for inference: bf16 (round to nearest even) and int8 with one f32
// scale per group of 32 consecutive inputs (symmetric, as llama.cpp's q8_0, so its files
// load without requantising). Norms, biases, convolutions and recurrent state stay f32.
#pragma once
#include <cstdint>
#include <string>

#include "tensor/tensor.h"

namespace pf {

enum class WeightFormat { F32, BF16, Int8 };

// "f32", "bf16" or "int8"; anything else is an error naming the accepted values.
WeightFormat parse_weight_format(const std::string& s);
const char* weight_format_name(WeightFormat f);

constexpr int64_t kQ8Group = 32;
// The group an int8 matrix with `cols` inputs gets: 32 where it divides, else the whole row
// (per-output-channel scales).
int64_t q8_group_for(int64_t cols);

// x: f32 (any shape, contiguous or not) -> BF16 of the same shape.
Tensor to_bf16(const Tensor& x);
// x: f32 (..., cols) -> Q8 with scale = max|x| / 127 per group, q = round(x / scale).
Tensor quantize_q8(const Tensor& x, int64_t group);
// The same tensor in `f` (f32 input; Q8 group from q8_group_for).
Tensor convert_weight(const Tensor& x, WeightFormat f);
// Any dtype -> f32 (a copy; F32 input is cloned).
Tensor to_f32(const Tensor& x);

// The format a tensor's dtype stands for (F32 for F32, BF16, Int8 for Q8).
WeightFormat weight_format_of(const Tensor& t);

}  // namespace pf
