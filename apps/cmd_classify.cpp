// `postformer classify train | eval | predict`: Perceiver IO, or a sequence backbone, on
// images (Fashion-MNIST IDX, PNG folders), audio (WAV folders) or text (text folders).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "apps/commands.h"
#include "apps/confusion_png.h"
#include "apps/model_flags.h"
#include "apps/train_flags.h"
#include "base/checks.h"
#include "base/error.h"
#include "base/threads.h"
#include "base/timer.h"
#include "data/classify_data.h"
#include "data/named_data.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "io/config_json.h"
#include "io/run_dir.h"
#include "train/classify_task.h"
#include "train/metrics_log.h"
#include "train/trainer.h"

namespace pf::cli {

namespace {
namespace fs = std::filesystem;

struct ClassifyTrainArgs {
  std::string data, backbone = "perceiver", resume, pattern;  // data: "" = the default
  int64_t d_model = 128, layers = 4, heads = 4, latents = 32, cross_heads = 4, repeats = 1,
          blocks = 1, widening = 2, patch = 0, bands = 0, limit = 0, val_every = 12;
  bool no_share = false, overwrite = false, no_augment = false;
  TrainOptions opt;
  double dropout = 0.0;
  int threads = 0;
  const CLI::App* cmd = nullptr;  // to tell flags given from defaults
  ClassifyTrainArgs() {
    opt.batch = 64;
    opt.steps = 0;  // 0: three epochs
    opt.lr = 1e-3;
    opt.warmup = 200;
    opt.eval_every = 500;
    opt.eval_batches = 1 << 20;  // the whole validation split
    opt.log_every = 50;
  }
};

const std::vector<std::string> kBackbones = {"perceiver", "transformer", "mamba",
                                             "mamba2",    "retnet",      "hybrid"};

// The classifier config the flags describe, for inputs of the front end `spec`.
nlohmann::json classifier_config(const ClassifyTrainArgs& a, const InputSpec& spec,
                                 const std::vector<std::string>& classes) {
  PF_CHECK(std::find(kBackbones.begin(), kBackbones.end(), a.backbone) != kBackbones.end(),
           "--backbone '", a.backbone, "' is not one of perceiver, transformer, mamba, mamba2, "
           "retnet, hybrid");
  nlohmann::json j;
  if (a.backbone == "perceiver") {
    j = {{"model_type", "perceiver_io"},
         {"num_latents", a.latents},
         {"d_latents", a.d_model},
         {"num_blocks", a.blocks},
         {"num_self_attends_per_block", a.layers},
         {"num_self_attention_heads", a.heads},
         {"num_cross_attention_heads", a.cross_heads},
         {"self_attention_widening_factor", a.widening},
         {"cross_attention_widening_factor", a.widening},
         {"cross_attend_repeats", a.repeats},
         {"share_weights", !a.no_share}};
  } else {
    ModelFlags m;
    m.arch = a.backbone;
    m.d_model = a.d_model;
    m.layers = a.layers;
    m.heads = a.heads;
    m.vocab = 2;  // no embedding is built; the input projection replaces it
    m.context = spec.length();
    m.pattern = a.pattern;
    if (a.backbone == "hybrid" && m.pattern.empty()) m.pattern = "MMAM";
    if (a.backbone == "hybrid") m.layers = static_cast<int64_t>(m.pattern.size());
    j = {{"model_type", "sequence_classifier"}, {"backbone", m.config()}};
  }
  j["input_length"] = spec.length();
  j["input_channels"] = spec.channels();
  j["num_labels"] = static_cast<int64_t>(classes.size());
  j["input"] = spec.to_json();
  j["labels"] = classes;
  j["data"] = a.data;  // eval's default source
  return j;
}

InputSpec spec_of_config(const nlohmann::json& cfg, const std::string& where) {
  PF_CHECK(cfg.contains("input"), where, ": config.json has no 'input' (front end) object");
  try {
    return InputSpec::from_json(cfg["input"]);
  } catch (const Error& e) {
    fail(where, ": ", e.what());
  }
}

std::vector<std::string> labels_of_config(const nlohmann::json& cfg, int64_t K,
                                          const std::string& where) {
  std::vector<std::string> labels;
  if (cfg.contains("labels") && cfg["labels"].is_array())
    for (const auto& l : cfg["labels"]) labels.push_back(l.is_string() ? l.get<std::string>() : "?");
  PF_CHECK(static_cast<int64_t>(labels.size()) == K, where, ": config.json lists ", labels.size(),
           " labels for ", K, " classes");
  return labels;
}

// Defaults by modality, measured on the bundled data sets (README, "Perceiver IO and
// classify"); a flag on the command line always wins. Returns the default epochs.
double apply_modality_defaults(ClassifyTrainArgs& a, const std::string& modality) {
  auto unset = [&](const char* flag) { return a.cmd == nullptr || a.cmd->count(flag) == 0; };
  if (modality == "audio") {
    // 3,000 short clips: a small model, iterative attention and dropout generalise best to
    // held-out voices.
    if (unset("--d-model")) a.d_model = 64;
    if (unset("--layers")) a.layers = 2;
    if (unset("--latents")) a.latents = 16;
    if (unset("--repeats")) a.repeats = 2;
    if (unset("--batch")) a.opt.batch = 32;
    if (unset("--lr")) a.opt.lr = 2e-3;
    if (unset("--dropout")) a.dropout = 0.1;
    return 20.0;
  }
  return modality == "image" ? 8.0 : 3.0;
}

void run_classify_train(ClassifyTrainArgs& a) {
  set_num_threads(a.threads);
  check_range("--dropout", a.dropout, 0.0, 1.0, false, true);
  check_range("--limit", a.limit, 0, int64_t{1} << 32);
  check_range("--val-every", a.val_every, 2, 1 << 20);
  if (a.opt.out_dir.empty()) a.opt.out_dir = a.resume.empty() ? "runs/classify" : a.resume;
  const bool same_dir = !a.resume.empty() &&
                        fs::weakly_canonical(a.opt.out_dir) == fs::weakly_canonical(a.resume);
  std::unique_ptr<Classifier> model;
  nlohmann::json cfg;
  std::string source_dir;
  int64_t resumed_step = 0;
  if (!a.resume.empty()) {
    source_dir = resolve_checkpoint_dir(a.resume);
    const TrainerState st = read_trainer_state((fs::path(source_dir) / "trainer_state.json").string());
    TrainOptions saved = st.options;
    if (a.opt.steps > 0) saved.steps = a.opt.steps;
    PF_CHECK(st.step <= saved.steps, "--steps ", saved.steps, " is below the step ", st.step,
             " the run has reached");
    saved.time_limit = a.opt.time_limit;
    saved.out_dir = a.opt.out_dir;
    saved.log_every = a.opt.log_every;
    saved.quiet = a.opt.quiet;
    a.opt = saved;
    resumed_step = st.step;
    cfg = read_json_file((fs::path(source_dir) / "config.json").string());
  }
  // A resumed run reads the data it was started on unless --data says otherwise.
  if (a.data.empty()) a.data = a.resume.empty() ? "fashion-mnist" : json_str(cfg, "data", "fashion-mnist");
  a.data = resolve_data_source(a.data);
  // The front end: from the resumed run, else the data source plus --patch / --bands.
  InputSpec spec = a.resume.empty() ? default_input_spec(a.data) : spec_of_config(cfg, source_dir);
  double epochs = 3.0;
  if (a.resume.empty()) {
    epochs = apply_modality_defaults(a, spec.modality);
    a.opt.dropout = static_cast<float>(a.dropout);
    if (a.patch > 0) spec.patch = a.patch;
    else if (spec.modality == "image") spec.patch = 4;
    if (a.bands > 0) spec.bands = a.bands;
    spec.augment = !a.no_augment;
    spec.validate();
  }
  Timer load_timer;
  const LabeledSet all = load_classify_data(a.data, spec, "train", a.limit);
  LabeledSet train, val;
  split_validation(all, a.val_every, &train, &val);
  std::printf("data %s (%s, %ld x %ld inputs): %ld train / %ld validation examples, %zu classes, "
              "read in %.1f s\n",
              a.data.c_str(), spec.modality.c_str(), static_cast<long>(spec.length()),
              static_cast<long>(spec.channels()), static_cast<long>(train.n),
              static_cast<long>(val.n), train.classes.size(), load_timer.seconds());
  if (a.opt.steps <= 0)
    a.opt.steps = std::max<int64_t>(1, std::llround(epochs * train.n / a.opt.batch));
  a.opt.validate();
  RunDir::check_out_dir(a.opt.out_dir, a.overwrite, same_dir);
  auto run_dir = std::make_unique<RunDir>(a.opt.out_dir);
  RunDir::check_out_dir(a.opt.out_dir, a.overwrite, same_dir);
  if (a.resume.empty()) {
    try {
      cfg = classifier_config(a, spec, train.classes);
      model = create_classifier(cfg, a.opt.seed);
    } catch (const Error& e) {
      fail("the model flags (--backbone, --d-model, --latents, ...) describe no valid model: ",
           e.what());
    }
  } else {
    model = load_classifier(source_dir);
    PF_CHECK(labels_of_config(cfg, model->num_classes(), source_dir) == train.classes, a.data,
             ": its classes differ from those the resumed run was trained on");
  }
  std::printf("model %s: %.3fM parameters | %ld steps of %ld (%.1f epochs) | %d threads\n",
              model->arch().c_str(), model->num_params() / 1e6, static_cast<long>(a.opt.steps),
              static_cast<long>(a.opt.batch), double(a.opt.steps) * a.opt.batch / train.n,
              num_threads());
  ClassifyTask task(*model, spec, train, val);
  Trainer trainer(task, a.opt, std::move(run_dir));
  if (!a.resume.empty()) {
    trainer.resume_from(source_dir);
    PF_CHECK(trainer.step() == resumed_step, source_dir, " changed while it was read");
    std::printf("resumed from %s at step %ld\n", a.resume.c_str(), static_cast<long>(trainer.step()));
  }
  const TrainResult r = trainer.run();
  std::printf("done: %ld steps in %.1f s, %.0f examples/s, validation accuracy %.2f%%\n",
              static_cast<long>(r.steps_done), r.seconds, r.tokens_per_sec, r.val_bpb);
  std::printf("checkpoint: %s\n", a.opt.out_dir.c_str());
}

struct ClassifyEvalArgs {
  std::string model_dir, data, split = "test", confusion = "confusion.png", json_out;
  int64_t batch = 100, limit = 0;
  bool overwrite = false;
  int threads = 0;
};

void run_classify_eval(const ClassifyEvalArgs& a) {
  set_num_threads(a.threads);
  check_range("--batch", a.batch, 1, 1 << 16);
  PF_CHECK(a.split == "train" || a.split == "test", "--split '", a.split, "' is not train or test");
  const std::string dir = resolve_checkpoint_dir(a.model_dir);
  const nlohmann::json cfg = read_json_file((fs::path(dir) / "config.json").string());
  auto model = load_classifier(dir);
  const InputSpec spec = spec_of_config(cfg, dir);
  const std::vector<std::string> labels = labels_of_config(cfg, model->num_classes(), dir);
  const std::string data =
      resolve_data_source(a.data.empty() ? json_str(cfg, "data", "fashion-mnist") : a.data);
  const bool picture = a.confusion != "none";
  if (picture && fs::exists(a.confusion))
    PF_CHECK(a.overwrite, "--confusion ", a.confusion, " exists; give --overwrite to replace it");
  const LabeledSet set = load_classify_data(data, spec, a.split, a.limit);
  PF_CHECK(set.classes == labels, data, ": its classes differ from the model's");
  Timer t;
  const Predictions p = predict_set(*model, spec, set, a.batch);
  const double secs = t.seconds();
  const int64_t K = model->num_classes();
  std::vector<int64_t> cm(K * K, 0);
  int64_t right = 0;
  for (int64_t i = 0; i < set.n; ++i) {
    cm[set.labels[i] * K + p.labels[i]]++;
    right += p.labels[i] == set.labels[i];
  }
  const double acc = 100.0 * right / set.n;
  std::printf("%s %s: accuracy %.2f%% (%ld / %ld) | %.0f examples/s\n", data.c_str(),
              a.split.c_str(), acc, static_cast<long>(right), static_cast<long>(set.n),
              set.n / secs);
  std::printf("confusion matrix (rows: true class, columns: predicted)\n%14s", "");
  for (int64_t k = 0; k < K; ++k) std::printf(" %5ld", static_cast<long>(k));
  std::printf("\n");
  for (int64_t r = 0; r < K; ++r) {
    std::printf("%2ld %-11.11s", static_cast<long>(r), labels[r].c_str());
    for (int64_t k = 0; k < K; ++k) std::printf(" %5ld", static_cast<long>(cm[r * K + k]));
    std::printf("\n");
  }
  if (picture) {
    write_file_atomic(a.confusion, confusion_png(cm, K));
    std::printf("confusion matrix picture: %s\n", a.confusion.c_str());
  }
  if (!a.json_out.empty()) {
    nlohmann::json j = {{"data", data},       {"split", a.split},         {"accuracy", acc},
                        {"examples", set.n},  {"examples_per_s", set.n / secs},
                        {"confusion", cm},    {"labels", labels},         {"arch", model->arch()},
                        {"params", model->num_params()}};
    // The run's last progress row (steps, seconds, examples/s), for benchmark reports.
    if (fs::exists(fs::path(a.model_dir) / kMetricsFile)) {
      const std::vector<nlohmann::json> rows = read_metrics(a.model_dir);
      if (!rows.empty()) j["train"] = rows.back();
    }
    write_file_atomic(a.json_out, j.dump(2) + "\n");
  }
}

struct ClassifyPredictArgs {
  std::string model_dir;
  std::vector<std::string> files;
  int64_t top = 3;
  int threads = 0;
};

void run_classify_predict(const ClassifyPredictArgs& a) {
  set_num_threads(a.threads);
  const std::string dir = resolve_checkpoint_dir(a.model_dir);
  const nlohmann::json cfg = read_json_file((fs::path(dir) / "config.json").string());
  auto model = load_classifier(dir);
  const InputSpec spec = spec_of_config(cfg, dir);
  const int64_t K = model->num_classes();
  const std::vector<std::string> labels = labels_of_config(cfg, K, dir);
  check_range("--top", a.top, 1, K);
  for (const std::string& f : a.files) {
    LabeledSet one;
    one.length = spec.length();
    one.channels = spec.content_channels();
    one.classes = labels;
    one.add(spec.file_content(f), 0);
    const Predictions p = predict_set(*model, spec, one, 1);
    std::vector<int64_t> order(K);
    for (int64_t k = 0; k < K; ++k) order[k] = k;
    std::sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return p.probs[x] > p.probs[y]; });
    std::printf("%s:", f.c_str());
    for (int64_t i = 0; i < a.top; ++i)
      std::printf(" %s %.1f%%%s", labels[order[i]].c_str(), 100.0 * p.probs[order[i]],
                  i + 1 < a.top ? "," : "");
    std::printf("\n");
  }
}
}  // namespace

void add_classify(CLI::App& app) {
  auto* cls = app.add_subcommand("classify", "Train, evaluate and use classifiers on images, audio, text");
  cls->require_subcommand(1);
  {
    auto a = std::make_shared<ClassifyTrainArgs>();
    auto* cmd = cls->add_subcommand("train", "Train a classifier (default: Perceiver IO on Fashion-MNIST)");
    cmd->add_option("--data", a->data,
                    "fashion-mnist (default; a resumed run: its own), spoken-digits or "
                    "bible-sections (built on first use), a directory of IDX files, or a directory SPLIT/CLASS/FILE (PNG, WAV or "
                    "text files)");
    cmd->add_option("--backbone", a->backbone,
                    "perceiver (Perceiver IO) | transformer | mamba | mamba2 | retnet | hybrid")
        ->capture_default_str();
    cmd->add_option("--d-model", a->d_model, "Width (Perceiver IO: the latents')")->capture_default_str();
    cmd->add_option("--layers", a->layers,
                    "Blocks (Perceiver IO: latent self-attention layers per block)")
        ->capture_default_str();
    cmd->add_option("--heads", a->heads, "Self-attention heads")->capture_default_str();
    cmd->add_option("--pattern", a->pattern, "Hybrid layers, e.g. MMAM (see train --pattern)");
    cmd->add_option("--latents", a->latents, "Perceiver IO: learned latents")->capture_default_str();
    cmd->add_option("--cross-heads", a->cross_heads, "Perceiver IO: cross-attention heads")
        ->capture_default_str();
    cmd->add_option("--repeats", a->repeats,
                    "Perceiver IO: cross-attends (iterative attention), each followed by the "
                    "latent blocks")
        ->capture_default_str();
    cmd->add_option("--blocks", a->blocks,
                    "Perceiver IO: times the latent layers run per repeat (shared weights)")
        ->capture_default_str();
    cmd->add_flag("--no-share", a->no_share,
                  "Perceiver IO: repeats after the second get their own weights");
    cmd->add_option("--widening", a->widening, "MLP width as a multiple of --d-model (Perceiver IO)")
        ->capture_default_str();
    cmd->add_option("--patch", a->patch,
                    "Image patch side (1 = pixels; default 4)");
    cmd->add_option("--bands", a->bands, "Fourier position bands per axis (default 8)");
    cmd->add_flag("--no-augment", a->no_augment,
                  "Train without augmentation (images: shifts of up to 2 pixels and left-right "
                  "flips; audio: echo or noise floor, time and mel-band shifts, band and time masks)");
    cmd->add_option("--limit", a->limit, "Use at most this many training examples (0 = all)");
    cmd->add_option("--val-every", a->val_every,
                    "Every k-th training example of each class is held out for validation")
        ->capture_default_str();
    cmd->add_option("--out", a->opt.out_dir, "Checkpoint directory (default runs/classify)");
    cmd->add_option("--resume", a->resume, "Continue the run in this directory");
    cmd->add_flag("--overwrite", a->overwrite, "Let --out name another run's directory");
    cmd->add_option("--steps", a->opt.steps,
                    "Optimizer steps (default: 8 epochs of images, 20 of audio, 3 of text)");
    add_train_flags(*cmd, a->opt, a->dropout);
    cmd->add_option("--seed", a->opt.seed, "Random seed")->check(kUnsigned)->capture_default_str();
    cmd->add_option("--threads", a->threads, "Worker threads (0 = all cores)");
    a->cmd = cmd;
    cmd->footer(
        "Audio data sets change the defaults of the flags not given: --d-model 64 --layers 2 "
        "--latents 16 --repeats 2 --batch 32 --lr 2e-3 --dropout 0.1, 20 epochs.");
    cmd->callback([a] { run_classify_train(*a); });
  }
  {
    auto a = std::make_shared<ClassifyEvalArgs>();
    auto* cmd = cls->add_subcommand("eval", "Accuracy and confusion matrix on a data split");
    cmd->add_option("--model", a->model_dir, "Checkpoint directory")->required();
    cmd->add_option("--data", a->data, "Data source (default: the one the model was trained on; spoken-digits and "
                     "bible-sections are built on first use)");
    cmd->add_option("--split", a->split, "train | test")->capture_default_str();
    cmd->add_option("--confusion", a->confusion, "Write the confusion matrix as a PNG here ('none': no picture)")
        ->capture_default_str();
    cmd->add_flag("--overwrite", a->overwrite, "Replace an existing --confusion file");
    cmd->add_option("--json", a->json_out, "Also write the results as JSON here");
    cmd->add_option("--batch", a->batch, "Examples per forward")->capture_default_str();
    cmd->add_option("--limit", a->limit, "Evaluate at most this many examples (0 = all)");
    cmd->add_option("--threads", a->threads, "Worker threads (0 = all cores)");
    cmd->callback([a] { run_classify_eval(*a); });
  }
  {
    auto a = std::make_shared<ClassifyPredictArgs>();
    auto* cmd = cls->add_subcommand("predict", "Top classes of PNG, WAV or text files");
    cmd->add_option("--model", a->model_dir, "Checkpoint directory")->required();
    cmd->add_option("files", a->files, "Files to classify")->required();
    cmd->add_option("--top", a->top, "Classes to print")->capture_default_str();
    cmd->add_option("--threads", a->threads, "Worker threads (0 = all cores)");
    cmd->callback([a] { run_classify_predict(*a); });
  }
}

}  // namespace pf::cli
