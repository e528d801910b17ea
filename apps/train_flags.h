// Optimizer, schedule, batch and logging flags shared by `train`, `task train` and `compare`.
#pragma once
#include <CLI/CLI.hpp>

#include "train/trainer.h"

namespace pf::cli {

// Registers --time-limit, --batch, --seq, --accum, --lr, ..., --log-every, --save-every on
// `cmd`, writing into opt (and dropout, checked as a double before it is narrowed).
void add_train_flags(CLI::App& cmd, TrainOptions& opt, double& dropout);

}  // namespace pf::cli
