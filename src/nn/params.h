// Parameters and how modules expose them: a visitor walks every parameter once with
// its checkpoint name, which drives loading, saving and the optimizer alike.
#pragma once
#include <functional>
#include <string>

#include "autograd/tape.h"
#include "base/rng.h"

namespace pf {

// Kind decides weight decay: only Matrix parameters are decayed.
enum class ParamKind { Matrix, Embedding, Norm, Bias, NoDecay };

using ParamVisitor = std::function<void(const std::string& name, Var& param, ParamKind kind)>;

// New trainable parameter of the given shape filled from N(0, std^2).
Var normal_param(const Shape& shape, float std, Rng& rng);
Var constant_param(const Shape& shape, float value);

}  // namespace pf
