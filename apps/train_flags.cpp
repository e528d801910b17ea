#include "apps/train_flags.h"

namespace pf::cli {

void add_train_flags(CLI::App& cmd, TrainOptions& opt, double& dropout) {
  cmd.add_option("--time-limit", opt.time_limit, "Stop after this many seconds (0 = none)")
      ->capture_default_str();
  cmd.add_option("--batch", opt.batch, "Sequences per micro-batch")->capture_default_str();
  cmd.add_option("--seq", opt.seq, "Tokens per sequence")->capture_default_str();
  cmd.add_option("--accum", opt.accum, "Micro-batches per step (gradient accumulation)")
      ->capture_default_str();
  cmd.add_option("--lr", opt.lr, "Peak learning rate")->capture_default_str();
  cmd.add_option("--min-lr-ratio", opt.min_lr_ratio, "Final LR as a fraction of the peak")
      ->capture_default_str();
  cmd.add_option("--warmup", opt.warmup, "Linear warmup steps")->capture_default_str();
  cmd.add_option("--weight-decay", opt.adam.weight_decay,
                 "AdamW decoupled weight decay (matrices only)")
      ->capture_default_str();
  cmd.add_option("--beta1", opt.adam.beta1, "AdamW beta1")->capture_default_str();
  cmd.add_option("--beta2", opt.adam.beta2, "AdamW beta2")->capture_default_str();
  cmd.add_option("--clip", opt.clip, "Gradient norm clip (0 = off)")->capture_default_str();
  cmd.add_option("--dropout", dropout, "Residual dropout")->capture_default_str();
  cmd.add_flag("--recompute", opt.recompute,
               "Recompute each block in the backward: activation memory of one block, not all");
  cmd.add_option("--eval-every", opt.eval_every, "Validate every N steps")->capture_default_str();
  cmd.add_option("--eval-batches", opt.eval_batches, "Validation batches per evaluation")
      ->capture_default_str();
  cmd.add_option("--log-every", opt.log_every, "Progress line every N steps")
      ->capture_default_str();
  cmd.add_option("--save-every", opt.save_every, "Checkpoint every N steps (0 = at end only)")
      ->capture_default_str();
}

}  // namespace pf::cli
