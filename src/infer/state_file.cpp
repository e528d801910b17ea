#include "infer/state_file.h"

#include <cstring>
#include <vector>

#include <cstdio>
#include <filesystem>
#include <set>

#include "base/error.h"
#include "io/config_json.h"
#include "io/safetensors.h"

namespace pf {

namespace {
constexpr const char* kFormat = "postformer-state-v2";  // v2: + weights fingerprint
}  // namespace

// 64-bit FNV-1a over every parameter's name, shape and f32 bits, in visit order, in four
// interleaved lanes so it runs near memory speed. Any changed weight changes it.
std::string weights_fingerprint(LanguageModel& m) {
  uint64_t lane[4] = {0xcbf29ce484222325ULL, 0x84222325cbf29ce4ULL, 0x9e3779b97f4a7c15ULL,
                      0xc2b2ae3d27d4eb4fULL};
  constexpr uint64_t kPrime = 0x100000001b3ULL;
  auto mix = [&](int l, uint64_t v) { lane[l] = (lane[l] ^ v) * kPrime; };
  m.visit_params([&](const std::string& name, Var& p, ParamKind) {
    for (char c : name) mix(0, static_cast<unsigned char>(c));
    for (int64_t d : p.shape()) mix(1, static_cast<uint64_t>(d));
    const Tensor t = p.value().contiguous();
    auto mix_words = [&](const uint32_t* bits, int64_t n) {
      int64_t i = 0;
      for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 4; ++l)
          mix(l, (uint64_t{bits[i + 2 * l]} << 32) | bits[i + 2 * l + 1]);
      for (; i < n; ++i) mix(2, bits[i]);
    };
    if (t.dtype() == DType::F32) return mix_words(reinterpret_cast<const uint32_t*>(t.data()), t.numel());
    // Compact weights: their stored bytes (and Q8 scales), after the dtype.
    mix(3, static_cast<uint64_t>(t.dtype()) + 1);
    auto mix_bytes = [&](const void* p, int64_t bytes) {
      std::vector<uint32_t> w(static_cast<size_t>((bytes + 3) / 4), 0);
      std::memcpy(w.data(), p, static_cast<size_t>(bytes));
      mix_words(w.data(), static_cast<int64_t>(w.size()));
    };
    mix_bytes(t.raw(), t.numel() * static_cast<int64_t>(dtype_size(t.dtype())));
    if (t.dtype() == DType::Q8) mix_bytes(t.q8_scales(), t.numel() / t.group() * 4);
  });
  char buf[80];
  std::snprintf(buf, sizeof buf, "%016llx%016llx%016llx%016llx",
                static_cast<unsigned long long>(lane[0]), static_cast<unsigned long long>(lane[1]),
                static_cast<unsigned long long>(lane[2]), static_cast<unsigned long long>(lane[3]));
  return buf;
}

std::map<std::string, std::string> state_origin(LanguageModel& model,
                                                const std::string& fingerprint) {
  return {{"arch", model.arch()},
          {"config", model.config_json().dump()},
          {"weights", fingerprint.empty() ? weights_fingerprint(model) : fingerprint}};
}

void check_state_origin(const std::string& path, const std::map<std::string, std::string>& md,
                        LanguageModel& model, const std::string& fingerprint) {
  auto get = [&](const char* key) {
    auto it = md.find(key);
    PF_CHECK(it != md.end(), path, ": not a postformer state file (no '", key, "' metadata)");
    return it->second;
  };
  PF_CHECK(get("arch") == model.arch(), path, ": state of a '", get("arch"),
           "' model cannot continue a '", model.arch(), "' model");
  // Compared as the model would read them, so keys added to config.json since (with their
  // defaults) do not orphan state files that older builds wrote.
  bool same_config = get("config") == model.config_json().dump();
  if (!same_config) try {
      same_config = canonical_config(parse_json(get("config"), path)) == model.config_json();
    } catch (const Error&) {
    }
  PF_CHECK(same_config, path, ": state was saved by a model with a different config");
  PF_CHECK(get("weights") == (fingerprint.empty() ? weights_fingerprint(model) : fingerprint),
           path,
           ": state was saved by a model with other weights (same config, different "
           "checkpoint); it cannot continue this one");
}

int64_t parse_state_position(const std::string& path, const std::string& pos) {
  // Digits only: "12abc" or "-3" is a damaged file, not position 12.
  PF_CHECK(
      !pos.empty() && pos.size() <= 18 && pos.find_first_not_of("0123456789") == std::string::npos,
      path, ": bad position '", pos, "'");
  return std::stoll(pos);
}

void save_session_state(const std::string& path, LanguageModel& model,
                        const InferenceSession& session) {
  PF_CHECK(session.last_logits().defined(), "nothing to save: the session has seen no tokens");
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (auto& [name, t] : session.export_state()) tensors.emplace_back("state." + name, t);
  tensors.emplace_back("last_logits", session.last_logits());
  auto md = state_origin(model);
  md["format"] = kFormat;
  md["position"] = std::to_string(session.position());
  write_safetensors(path, tensors, md);
}

void check_state_path(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::symlink_status(path, ec))) return;
  bool ours = false;
  try {
    SafetensorsFile f(path);
    auto it = f.metadata().find("format");
    ours = it != f.metadata().end() && it->second.rfind("postformer-state-", 0) == 0;
  } catch (const Error&) {
  }
  PF_CHECK(ours, "--save-state ", path,
           " exists and is not a postformer state file; give a new path (it was not changed)");
}

void load_session_state(const std::string& path, LanguageModel& model, InferenceSession& session) {
  PF_CHECK(std::filesystem::exists(path), "state file ", path, " does not exist");
  SafetensorsFile f(path);  // refuses non-regular files and malformed headers
  const auto& md = f.metadata();
  auto get = [&](const char* key) {
    auto it = md.find(key);
    PF_CHECK(it != md.end(), path, ": not a postformer state file (no '", key, "' metadata)");
    return it->second;
  };
  PF_CHECK(get("format") != "postformer-state-v1", path,
           ": saved by an older postformer, without the fingerprint of its weights; "
           "recreate it with --save-state");
  PF_CHECK(get("format") == kFormat, path, ": unsupported state format '", get("format"), "'");
  check_state_origin(path, md, model);
  const int64_t position = parse_state_position(path, get("position"));
  PF_CHECK(position >= 1 && position <= session.capacity(), path, ": position ", position,
           " is outside this session's context [1, ", session.capacity(), "]");
  std::set<std::string> expected = {"last_logits"};
  auto finite = [&](const std::string& name, Tensor t) {
    const int64_t bad = first_nonfinite(t);
    PF_CHECK(bad < 0, path, ": tensor '", name, "' holds ", t.data()[bad], " at element ", bad);
    return t;
  };
  std::vector<std::pair<std::string, Tensor>> state;
  for (auto& [name, t] : session.export_state()) {
    const std::string key = "state." + name;
    // The shape a fresh session exports is the shape at position 0; caches grow, so
    // import_state checks those, while the element type and finiteness are checked here.
    state.emplace_back(name, finite(key, f.load_f32(key)));
    expected.insert(key);
    (void)t;
  }
  for (const std::string& name : f.names())
    PF_CHECK(expected.count(name), path, ": unexpected tensor '", name, "'");
  try {
    session.import_state(state, position);
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  session.set_last_logits(
      finite("last_logits", f.load_f32("last_logits", {1, model.vocab_size()})));
}

}  // namespace pf
