#include "tasks/synthetic_task.h"

#include "base/checks.h"
#include "base/error.h"
#include "io/config_json.h"

namespace pf {

namespace {
constexpr uint64_t kValSeed = 0x7A5C0FFEE0DDF00DULL;  // validation's own stream
}

nlohmann::json TaskOptions::to_json() const {
  return {{"task", name},
          {"vocab", vocab},
          {"data_tokens", data_tokens},
          {"pairs", pairs},
          {"power_a", power_a}};
}

TaskOptions TaskOptions::from_json(const nlohmann::json& j) {
  TaskOptions o;
  PF_CHECK(j.is_object() && j.contains("task") && j["task"].is_string(), "no 'task' string");
  o.name = j["task"].get<std::string>();
  o.vocab = json_int(j, "vocab");
  o.data_tokens = json_int(j, "data_tokens");
  o.power_a = json_num(j, "power_a");
  PF_CHECK(j.contains("pairs") && j["pairs"].is_array(), "no 'pairs' array");
  for (const auto& p : j["pairs"]) {
    PF_CHECK(p.is_number_integer(), "'pairs' holds a non-integer");
    o.pairs.push_back(p.get<int64_t>());
  }
  return o;
}

SyntheticTask::SyntheticTask(TaskOptions opt) : opt_(std::move(opt)) {}

Batch SyntheticTask::train_batch(int64_t B, int64_t T, uint64_t seed, uint64_t step) const {
  Batch b;
  b.B = B;
  b.T = T;
  b.inputs.resize(B * T);
  b.targets.resize(B * T);
  for (int64_t i = 0; i < B; ++i) {
    Rng rng(seed, step * static_cast<uint64_t>(B) + i);
    make_sequence(rng, T, &b.inputs[i * T], &b.targets[i * T]);
  }
  return b;
}

Batch SyntheticTask::val_batch(int64_t B, int64_t T, int64_t index) const {
  return train_batch(B, T, kValSeed, static_cast<uint64_t>(index));
}

void SyntheticTask::check_fits(int64_t B, int64_t T) const {
  check_range("--batch", B, 1, 1 << 20);
  PF_CHECK(T >= min_length(), "task ", opt_.name, " needs sequences of at least ", min_length(),
           " tokens, not ", T);
}

}  // namespace pf
