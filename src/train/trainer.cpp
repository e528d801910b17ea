#include "train/trainer.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>

#include "autograd/ops.h"
#include "base/checks.h"
#include "base/error.h"
#include "base/memory_stats.h"
#include "base/timer.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "io/config_json.h"
#include "train/lm_task.h"

namespace pf {

namespace fs = std::filesystem;

nlohmann::json TrainOptions::to_json() const {
  return {{"batch", batch},
          {"seq", seq},
          {"steps", steps},
          {"accum", accum},
          {"warmup", warmup},
          {"lr", lr},
          {"min_lr_ratio", min_lr_ratio},
          {"clip", clip},
          {"beta1", adam.beta1},
          {"beta2", adam.beta2},
          {"eps", adam.eps},
          {"weight_decay", adam.weight_decay},
          {"dropout", dropout},
          {"recompute", recompute},
          {"eval_every", eval_every},
          {"eval_batches", eval_batches},
          {"seed", seed}};
}

TrainOptions TrainOptions::from_json(const nlohmann::json& j) {
  TrainOptions o;
  o.batch = json_int(j, "batch");
  o.seq = json_int(j, "seq");
  o.steps = json_int(j, "steps");
  o.accum = json_int(j, "accum");
  o.warmup = json_int(j, "warmup");
  o.lr = json_num(j, "lr");
  o.min_lr_ratio = json_num(j, "min_lr_ratio");
  o.clip = json_num(j, "clip");
  o.adam.beta1 = json_num(j, "beta1");
  o.adam.beta2 = json_num(j, "beta2");
  o.adam.eps = json_num(j, "eps");
  o.adam.weight_decay = json_num(j, "weight_decay");
  const double dropout = json_num(j, "dropout");
  check_range("dropout", dropout, 0.0, 1.0, false, true);  // before the cast to float
  o.dropout = static_cast<float>(dropout);
  o.recompute = json_bool(j, "recompute", false);
  o.eval_every = json_int(j, "eval_every");
  o.eval_batches = json_int(j, "eval_batches");
  const int64_t seed = json_int(j, "seed");
  PF_CHECK(seed >= 0, "seed ", seed, " is negative");
  o.seed = static_cast<uint64_t>(seed);
  return o;
}

void TrainOptions::validate() const {
  constexpr int64_t kMaxCount = int64_t{1} << 40;
  check_range("--batch", batch, 1, 1 << 20);
  check_range("--seq", seq, 1, 1 << 24);
  check_range("--accum", accum, 1, 1 << 20);
  checked_mul(checked_mul(batch, seq, "--batch x --seq"), accum, "tokens per step", kMaxCount);
  check_range("--steps", steps, 1, kMaxCount);
  check_range("--warmup", warmup, 0, kMaxCount);
  check_range("--lr", lr, 0.0, 10.0, /*open_lo=*/true);
  check_range("--min-lr-ratio", min_lr_ratio, 0.0, 1.0);
  check_range("--clip", clip, 0.0, 1e9);
  check_range("--beta1", adam.beta1, 0.0, 1.0, false, /*open_hi=*/true);
  check_range("--beta2", adam.beta2, 0.0, 1.0, false, true);
  check_range("--adam-eps", adam.eps, 0.0, 1.0, /*open_lo=*/true);
  check_range("--weight-decay", adam.weight_decay, 0.0, 1e3);
  check_range("--dropout", static_cast<double>(dropout), 0.0, 1.0, false, true);
  check_range("--time-limit", time_limit, 0.0, 1e9);
  check_range("--stop-at-step", stop_at_step, 0, kMaxCount);
  check_range("--eval-every", eval_every, 0, kMaxCount);
  check_range("--eval-batches", eval_batches, 1, kMaxCount);
  check_range("--log-every", log_every, 1, kMaxCount);
  check_range("--save-every", save_every, 0, kMaxCount);
}

TrainerState read_trainer_state(const std::string& path) {
  const nlohmann::json j = read_json_file(path);
  TrainerState st;
  try {
    PF_CHECK(j.is_object() && j.contains("options") && j["options"].is_object(),
             "no 'options' object");
    st.options = TrainOptions::from_json(j["options"]);
    st.options.validate();
    st.step = json_int(j, "step");
    st.adam_steps = json_int(j, "adam_steps");
    PF_CHECK(j.contains("arch") && j["arch"].is_string(), "no 'arch' string");
    st.arch = j["arch"].get<std::string>();
    check_range("step", st.step, 0, st.options.steps);
    check_range("adam_steps", st.adam_steps, 0, st.step);
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  return st;
}

Trainer::Trainer(LanguageModel& model, const BatchSource& data, const TrainOptions& opt,
                 std::unique_ptr<RunDir> run_dir)
    : own_task_(std::make_unique<LmTask>(model, data, opt.seq)),
      task_(own_task_.get()),
      model_(model),
      opt_(opt),
      run_dir_(std::move(run_dir)) {
  init();
}

Trainer::Trainer(TrainTask& task, const TrainOptions& opt, std::unique_ptr<RunDir> run_dir)
    : task_(&task), model_(task.model()), opt_(opt), run_dir_(std::move(run_dir)) {
  init();
}

void Trainer::init() {
  opt_.validate();
  // Weights, gradients and two AdamW moments: 16 bytes a parameter before any activation.
  const int64_t ram = physical_memory_bytes();
  const int64_t params = model_.num_params();
  PF_CHECK(ram == 0 || params <= ram / 16, "training ", params, " parameters needs at least ",
           (params * 16) >> 20,
           " MiB (weights, gradients, AdamW moments), more than this "
           "machine's ",
           ram >> 20, " MiB");
  // Everything that could fail at the end of a run is checked before its first step.
  task_->check_fits(opt_.batch);
  std::vector<std::pair<std::string, Var>> named;
  std::vector<ParamKind> kinds;
  model_.visit_params([&](const std::string& name, Var& p, ParamKind kind) {
    named.emplace_back(name, p);
    kinds.push_back(kind);
  });
  adam_ = std::make_unique<AdamW>(opt_.adam, named, kinds);
  for (const std::string& f : opt_.extra_files)
    extra_blobs_.emplace_back(fs::path(f).filename().string(), read_file(f));
  if (!run_dir_ && !opt_.out_dir.empty()) run_dir_ = std::make_unique<RunDir>(opt_.out_dir);
}

double Trainer::train_step() {
  for (auto& s : adam_->slots()) s.param.zero_grad();
  double loss_sum = 0.0;
  for (int64_t micro = 0; micro < opt_.accum; ++micro) {
    const uint64_t sample = static_cast<uint64_t>(step_) * opt_.accum + micro;
    Tape tape;
    {
      TapeScope scope(tape);
      ForwardOptions fo;
      fo.dropout = opt_.dropout;
      fo.recompute = opt_.recompute;
      fo.dropout_seed = (opt_.seed * 0x9E3779B97F4A7C15ULL) ^ (sample * 1000003ULL);
      Var loss = task_->train_loss(opt_.batch, opt_.seed, sample, fo);
      loss_sum += loss.value().data()[0];
      Var scaled = scale(loss, 1.0f / static_cast<float>(opt_.accum));
      tape.backward(scaled);
    }
  }
  // Gradients are complete here: a data-parallel all-reduce belongs at this point.
  clip_grad_norm(adam_->slots(), opt_.clip);
  adam_->step(lr_at(step_, opt_.warmup, opt_.steps, opt_.lr, opt_.min_lr_ratio));
  ++step_;
  return loss_sum / opt_.accum;
}

namespace {
std::string format_eta(double s) {
  char buf[32];
  const int64_t t = static_cast<int64_t>(s + 0.5);
  std::snprintf(buf, sizeof buf, "%ldm%02lds", static_cast<long>(t / 60),
                static_cast<long>(t % 60));
  return buf;
}
}  // namespace

TrainResult Trainer::run() {
  TrainResult r;
  Timer timer;
  // Items with a loss: every token for a decoder, the latents for Perceiver AR, examples
  // for a classifier.
  const int64_t tokens_per_step = task_->items_per_batch(opt_.batch) * opt_.accum;
  const int64_t start_step = step_;
  double last_val = std::nan("");
  // A fresh run starts metrics.jsonl anew; a resumed one keeps the rows up to its step.
  if (run_dir_ && !metrics_)
    metrics_ = std::make_unique<MetricsLog>(run_dir_->dir(), step_ > 0 ? step_ : -1);
  double loss_since_row = 0.0;
  int64_t steps_since_row = 0;
  while (step_ < opt_.steps) {
    const double loss = train_step();
    r.losses.push_back(loss);
    loss_since_row += loss;
    ++steps_since_row;
    PF_CHECK(std::isfinite(loss), "training diverged: loss is ", loss, " at step ", step_);
    const double el = timer.seconds();
    const int64_t done = step_ - start_step;
    const bool last = step_ == opt_.steps;
    const bool out_of_time = (opt_.time_limit > 0 && el >= opt_.time_limit) ||
                             (opt_.stop_at_step > 0 && step_ >= opt_.stop_at_step);
    // The run's final checkpoint is written before its final evaluation.
    const bool ending = last || out_of_time;
    if (ending && run_dir_) save_checkpoint();
    const bool evaluated = opt_.eval_every > 0 && (step_ % opt_.eval_every == 0 || ending);
    if (evaluated) last_val = evaluate_bpb(opt_.eval_batches);
    if (metrics_ && (evaluated || step_ % opt_.log_every == 0 || ending)) {
      const double el_now = timer.seconds();
      const std::string items = task_->items_key();
      nlohmann::json row = {
          {"step", step_},
          {items, step_ * tokens_per_step},
          {"loss", loss_since_row / steps_since_row},
          {task_->val_key(), evaluated ? nlohmann::json(last_val) : nlohmann::json()},
          {"lr", lr_at(step_ - 1, opt_.warmup, opt_.steps, opt_.lr, opt_.min_lr_ratio)},
          {items + "_per_s", done * tokens_per_step / el_now},
          {"peak_mem_mib", peak_rss_kib() / 1024.0},
          {"seconds", el_now}};
      task_->add_train_metrics(row, loss_since_row / steps_since_row);
      metrics_->append(row);
      loss_since_row = 0.0;
      steps_since_row = 0;
    }
    if (!opt_.quiet && (step_ % opt_.log_every == 0 || last || out_of_time)) {
      const double tps = done * tokens_per_step / el;
      double eta = (opt_.steps - step_) * el / done;
      if (opt_.time_limit > 0) eta = std::min(eta, std::max(0.0, opt_.time_limit - el));
      std::printf("step %5ld/%ld | loss %.4f | %s %s | lr %.2e | %.0f %s | ETA %s\n",
                  static_cast<long>(step_), static_cast<long>(opt_.steps), loss,
                  task_->val_label().c_str(),
                  std::isnan(last_val) ? "  -   " : task_->format_val(last_val).c_str(),
                  lr_at(step_ - 1, opt_.warmup, opt_.steps, opt_.lr, opt_.min_lr_ratio), tps,
                  task_->rate_unit().c_str(), format_eta(eta).c_str());
      std::fflush(stdout);
    }
    if (run_dir_ && opt_.save_every > 0 && step_ % opt_.save_every == 0 && !ending)
      save_checkpoint();
    if (out_of_time && !last) {
      r.stopped_by_time = true;
      if (!opt_.quiet)
        std::printf("stopping at step %ld of %ld (time or step limit); resume with --resume\n",
                    static_cast<long>(step_), static_cast<long>(opt_.steps));
      break;
    }
  }
  r.seconds = timer.seconds();
  r.steps_done = step_ - start_step;
  r.tokens_per_sec = r.seconds > 0 ? r.steps_done * tokens_per_step / r.seconds : 0;
  // A run with no step to take (resumed at its end) still leaves its checkpoint.
  if (run_dir_ && r.steps_done == 0) save_checkpoint();
  r.val_bpb = std::isnan(last_val) ? evaluate_bpb(opt_.eval_batches) : last_val;
  return r;
}

void Trainer::save_checkpoint() {
  last_checkpoint_ = run_dir_->save(step_, [&](const std::string& tmp) {
    write_model_files(tmp, model_);
    std::vector<std::pair<std::string, Tensor>> moments;
    for (auto& s : adam_->slots()) {
      moments.emplace_back("m." + s.name, s.m);
      moments.emplace_back("v." + s.name, s.v);
    }
    write_safetensors((fs::path(tmp) / "optimizer.safetensors").string(), moments);
    nlohmann::json state = {{"step", step_},
                            {"adam_steps", adam_->steps_taken()},
                            {"arch", model_.arch()},
                            {"options", opt_.to_json()}};
    write_file_atomic((fs::path(tmp) / "trainer_state.json").string(), state.dump(2) + "\n");
    for (const auto& [name, bytes] : extra_blobs_)
      write_file_atomic((fs::path(tmp) / name).string(), bytes);
  });
}

void Trainer::resume_from(const std::string& dir_in) {
  const std::string dir = resolve_checkpoint_dir(dir_in);
  const std::string state_path = (fs::path(dir) / "trainer_state.json").string();
  const TrainerState st = read_trainer_state(state_path);
  PF_CHECK(st.arch == model_.arch(), state_path, ": the run trained a '", st.arch, "' model, not '",
           model_.arch(), "'");
  load_weights(model_, WeightFiles(dir));
  const std::string opt_path = (fs::path(dir) / "optimizer.safetensors").string();
  SafetensorsFile opt(opt_path);
  std::set<std::string> expected;
  for (auto& s : adam_->slots()) {
    for (const char* kind : {"m.", "v."}) {
      const std::string name = kind + s.name;
      Tensor t = opt.load_f32(name, s.param.shape());
      const int64_t bad = first_nonfinite(t);
      PF_CHECK(bad < 0, opt_path, ": tensor '", name, "' holds ", t.data()[bad], " at element ",
               bad);
      // Adam's second moment is a mean of squares: a negative one is corruption.
      if (kind[0] == 'v')
        for (int64_t i = 0; i < t.numel(); ++i)
          PF_CHECK(t.data()[i] >= 0.0f, opt_path, ": tensor '", name, "' is negative at element ",
                   i);
      (kind[0] == 'm' ? s.m : s.v).copy_from(t);
      expected.insert(name);
    }
  }
  for (const std::string& name : opt.names())
    PF_CHECK(expected.count(name), opt_path, ": unexpected tensor '", name,
             "' (not a moment of this model's parameters)");
  step_ = st.step;
  adam_->set_steps_taken(st.adam_steps);
}

}  // namespace pf
