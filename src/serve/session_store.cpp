#include "serve/session_store.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "infer/state_file.h"
#include "io/safetensors.h"
#include "serve/serve_error.h"

namespace pf {

namespace fs = std::filesystem;

namespace {
constexpr const char* kFormat = "postformer-session-v1";
constexpr const char* kSuffix = ".session.safetensors";

// Whether a file is a session we wrote (a different file at that path is never replaced).
bool is_our_session_file(const std::string& path) {
  try {
    SafetensorsFile f(path);
    auto it = f.metadata().find("format");
    return it != f.metadata().end() && it->second == kFormat;
  } catch (const Error&) {
    return false;
  }
}
}  // namespace

int64_t SessionState::bytes() const {
  int64_t n = 0;
  for (const auto& [name, t] : tensors) n += t.numel() * static_cast<int64_t>(sizeof(float));
  return n + static_cast<int64_t>(pending.size() * sizeof(int32_t));
}

SessionStore::SessionStore(LanguageModel& model, std::string fingerprint, std::string dir,
                           int64_t max_bytes)
    : model_(model), fingerprint_(std::move(fingerprint)), dir_(std::move(dir)),
      max_bytes_(max_bytes) {
  if (dir_.empty()) return;
  std::error_code ec;
  fs::create_directories(dir_, ec);
  PF_CHECK(fs::is_directory(dir_), "--session-dir ", dir_, " is not a directory");
  // Sessions saved by an earlier run come back on first use.
  for (const auto& e : fs::directory_iterator(dir_)) {
    const std::string name = e.path().filename().string();
    if (name.size() <= std::string(kSuffix).size() ||
        name.compare(name.size() - std::string(kSuffix).size(), std::string::npos, kSuffix) != 0)
      continue;
    const std::string id = name.substr(0, name.size() - std::string(kSuffix).size());
    try {
      check_id(id);
    } catch (const Error&) {
      continue;
    }
    if (!is_our_session_file(e.path().string())) continue;
    auto s = std::make_shared<ServerSession>(id);
    s->resident_ = false;
    sessions_[id] = s;
  }
}

void SessionStore::check_id(const std::string& id) {
  const bool ok = !id.empty() && id.size() <= 64 && id[0] != '.' &&
                  std::all_of(id.begin(), id.end(), [](char c) {
                    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ||
                           c == '.';
                  });
  if (!ok)
    http_fail(400, "session id '", id.substr(0, 80),
              "' is invalid: use 1 to 64 letters, digits, '_', '-' or '.', not starting with '.'");
}

std::string SessionStore::path_of(const std::string& id) const {
  return (fs::path(dir_) / (id + kSuffix)).string();
}

SessionInfo SessionStore::info_of(const ServerSession& s) const {
  SessionInfo i;
  i.id = s.id_;
  i.position = s.state_.position + static_cast<int64_t>(s.state_.pending.size());
  i.state_bytes = s.resident_ ? s.state_.bytes() : 0;
  i.resident = s.resident_;
  i.busy = s.busy_;
  i.turns = s.state_.turns;
  return i;
}

SessionInfo SessionStore::create(const std::string& want) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string id = want;
  if (id.empty()) {
    do id = std::string("s").append(std::to_string(next_id_++));
    while (sessions_.count(id));
  }
  check_id(id);
  if (sessions_.count(id)) http_fail(409, "session '", id, "' already exists");
  if (!dir_.empty() && fs::exists(fs::symlink_status(path_of(id))))
    http_fail(409, "session '", id, "': ", path_of(id), " exists and is not a session of ours");
  auto s = std::make_shared<ServerSession>(id);
  s->last_used_ = ++clock_;
  sessions_[id] = s;
  evicted_.erase(id);
  return info_of(*s);
}

std::shared_ptr<ServerSession> SessionStore::find(const std::string& id) {
  check_id(id);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) {
    if (evicted_.count(id))
      http_fail(404, "session '", id,
                "' was evicted under --max-state-memory; start the server with --session-dir "
                "to keep evicted sessions on disk");
    http_fail(404, "no session '", id, "'");
  }
  ServerSession& s = *it->second;
  if (!s.resident_ && !s.busy_) {
    s.state_ = read(id);
    s.resident_ = true;
  }
  s.last_used_ = ++clock_;
  return it->second;
}

SessionInfo SessionStore::fork(const std::string& src, const std::string& want) {
  std::lock_guard<std::mutex> lock(mu_);
  auto from = find(src);
  if (from->busy_) http_fail(409, "session '", src, "' is in the middle of a turn; fork it after");
  std::string id = want;
  if (id.empty()) {
    do id = src + "-fork" + std::to_string(next_id_++);
    while (sessions_.count(id));
  }
  check_id(id);
  if (sessions_.count(id)) http_fail(409, "session '", id, "' already exists");
  auto s = std::make_shared<ServerSession>(id);
  s->state_ = from->state_;
  for (auto& [name, t] : s->state_.tensors) t = t.clone();  // its own copy, not a view
  s->last_used_ = ++clock_;
  sessions_[id] = s;
  evicted_.erase(id);
  evict_locked();
  return info_of(*s);
}

SessionInfo SessionStore::info(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  check_id(id);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) http_fail(404, "no session '", id, "'");
  return info_of(*it->second);
}

std::vector<SessionInfo> SessionStore::list() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<SessionInfo> out;
  for (const auto& [id, s] : sessions_) out.push_back(info_of(*s));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

void SessionStore::write(const ServerSession& s) {
  const std::string path = path_of(s.id_);
  if (fs::exists(fs::symlink_status(path)) && !is_our_session_file(path))
    fail(path, " exists and is not a session file of ours; it was left as it is");
  NamedTensors tensors;
  for (const auto& [name, t] : s.state_.tensors) tensors.emplace_back("state." + name, t);
  nlohmann::json history = nlohmann::json::array();
  for (const ChatMessage& m : s.state_.history)
    history.push_back({{"role", m.role}, {"content", m.content}});
  auto md = state_origin(model_, fingerprint_);
  md["format"] = kFormat;
  md["position"] = std::to_string(s.state_.position);
  md["pending"] = nlohmann::json(s.state_.pending).dump();
  md["history"] = history.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  md["turns"] = std::to_string(s.state_.turns);
  md["transcript"] = s.state_.transcript;
  write_safetensors(path, tensors, md);
}

SessionState SessionStore::read(const std::string& id) {
  const std::string path = path_of(id);
  PF_CHECK(fs::exists(path), "session '", id, "': ", path, " is gone");
  SafetensorsFile f(path);
  const auto& md = f.metadata();
  auto get = [&](const char* key) {
    auto it = md.find(key);
    PF_CHECK(it != md.end(), path, ": not a postformer session (no '", key, "' metadata)");
    return it->second;
  };
  PF_CHECK(get("format") == kFormat, path, ": unsupported session format '", get("format"), "'");
  check_state_origin(path, md, model_, fingerprint_);
  SessionState st;
  st.position = parse_state_position(path, get("position"));
  st.turns = parse_state_position(path, get("turns"));
  st.transcript = get("transcript");
  try {
    const auto pending = nlohmann::json::parse(get("pending"));
    const auto history = nlohmann::json::parse(get("history"));
    for (const auto& v : pending) {
      const int64_t t = v.get<int64_t>();
      PF_CHECK(t >= 0 && t < model_.vocab_size(), "pending token ", t, " is outside the vocabulary");
      st.pending.push_back(static_cast<int32_t>(t));
    }
    for (const auto& m : history)
      st.history.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": malformed session metadata (", e.what(), ")");
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  for (const std::string& name : f.names()) {
    PF_CHECK(name.rfind("state.", 0) == 0, path, ": unexpected tensor '", name, "'");
    Tensor t = f.load_f32(name);
    for (int64_t i = 0; i < t.numel(); ++i)
      PF_CHECK(std::isfinite(t.data()[i]), path, ": tensor '", name, "' is not finite at ", i);
    st.tensors.emplace_back(name.substr(6), std::move(t));
  }
  return st;
}

std::string SessionStore::save(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (dir_.empty()) http_fail(400, "saving a session needs the server started with --session-dir");
  auto s = find(id);
  if (s->busy_) http_fail(409, "session '", id, "' is in the middle of a turn; save it after");
  write(*s);
  return path_of(id);
}

void SessionStore::remove(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  check_id(id);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) http_fail(404, "no session '", id, "'");
  if (it->second->busy_) http_fail(409, "session '", id, "' is in the middle of a turn");
  if (!dir_.empty() && is_our_session_file(path_of(id))) fs::remove(path_of(id));
  sessions_.erase(it);
}

std::shared_ptr<ServerSession> SessionStore::check_out(const std::string& id, SessionState* st) {
  std::lock_guard<std::mutex> lock(mu_);
  auto s = find(id);
  if (s->busy_) http_fail(409, "session '", id, "' is already running a turn");
  s->busy_ = true;
  *st = std::move(s->state_);
  s->state_ = SessionState{};
  s->state_.position = st->position;  // for listings while the turn runs
  s->state_.turns = st->turns;
  return s;
}

void SessionStore::check_in(const std::shared_ptr<ServerSession>& s, SessionState st) {
  std::lock_guard<std::mutex> lock(mu_);
  s->state_ = std::move(st);
  s->busy_ = false;
  s->resident_ = true;
  s->last_used_ = ++clock_;
  if (!sessions_.count(s->id_)) return;  // deleted meanwhile (not possible while busy)
  evict_locked();
}

int64_t SessionStore::parked_bytes() {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t n = 0;
  for (const auto& [id, s] : sessions_)
    if (s->resident_) n += s->state_.bytes();
  return n;
}

void SessionStore::evict_locked() {
  if (max_bytes_ <= 0) return;
  for (;;) {
    int64_t total = 0;
    std::shared_ptr<ServerSession> oldest;
    for (const auto& [id, s] : sessions_) {
      if (!s->resident_) continue;
      total += s->state_.bytes();
      // Evicting an empty session frees nothing.
      if (!s->busy_ && s->state_.bytes() > 0 && (!oldest || s->last_used_ < oldest->last_used_))
        oldest = s;
    }
    if (total <= max_bytes_ || !oldest) return;
    ++evictions_;
    if (!dir_.empty()) {
      write(*oldest);
      oldest->state_ = SessionState{};
      oldest->resident_ = false;
    } else {
      evicted_.insert(oldest->id_);
      sessions_.erase(oldest->id_);
    }
  }
}

void SessionStore::save_all() {
  std::lock_guard<std::mutex> lock(mu_);
  if (dir_.empty()) return;
  for (const auto& [id, s] : sessions_)
    if (s->resident_ && !s->busy_) write(*s);
}

}  // namespace pf
