// Named sessions: a conversation's state parked between turns (recurrent state or KV cache,
// the tokens sampled but not yet fed, the chat history). Parked states count against a
// memory limit; the least recently used are evicted first, to --session-dir when there is
// one. Thread-safe: HTTP threads create, fork and list; the scheduler checks a session out
// for a turn and back in after it.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "models/core/layer_state.h"
#include "models/lm.h"
#include "serve/chat_template.h"

namespace pf {

struct SessionInfo {
  std::string id;
  int64_t position = 0;     // tokens the state holds
  int64_t state_bytes = 0;  // memory of the parked state (0 when only on disk)
  bool resident = false;    // in memory (else on disk)
  bool busy = false;        // a turn is running
  int64_t turns = 0;
};

// A session's content as a turn sees it.
struct SessionState {
  NamedTensors tensors;          // the pool slot's save(); empty for a new session
  int64_t position = 0;          // tokens in tensors
  std::vector<int32_t> pending;  // sampled or sent, not yet fed: fed first next turn
  std::vector<ChatMessage> history;
  std::string transcript;  // the text the state has read (UTF-8 sanitised): how the next
                           // chat turn finds what the template adds after it
  int64_t turns = 0;
  int64_t bytes() const;
};

class ServerSession {
 public:
  explicit ServerSession(std::string id) : id_(std::move(id)) {}
  const std::string& id() const { return id_; }

 private:
  friend class SessionStore;
  std::string id_;
  SessionState state_;
  bool resident_ = true, busy_ = false;
  uint64_t last_used_ = 0;
};

class SessionStore {
 public:
  // dir: where sessions are saved and found again ("" = memory only). max_bytes: parked
  // state memory before eviction (0 = no limit). fingerprint: the model's weights'.
  SessionStore(LanguageModel& model, std::string fingerprint, std::string dir, int64_t max_bytes);

  static void check_id(const std::string& id);  // 400 unless [A-Za-z0-9_.-]{1,64}, no leading '.'
  SessionInfo create(const std::string& id);    // "" = a generated id; 409 when taken
  SessionInfo fork(const std::string& src, const std::string& dst);
  SessionInfo info(const std::string& id);
  std::vector<SessionInfo> list();
  std::string save(const std::string& id);  // path written; 400 without a session dir
  void remove(const std::string& id);       // and its file, which we wrote
  // Checks a session out for a turn (409 when one is running, 404 when unknown) and hands
  // its state over; check_in returns the state after the turn (or after a failed one).
  std::shared_ptr<ServerSession> check_out(const std::string& id, SessionState* state);
  void check_in(const std::shared_ptr<ServerSession>& s, SessionState state);
  int64_t parked_bytes();
  int64_t evictions() const { return evictions_; }
  void save_all();  // at shutdown, when there is a session dir

 private:
  std::shared_ptr<ServerSession> find(const std::string& id);  // loads from disk; 404
  SessionInfo info_of(const ServerSession& s) const;
  std::string path_of(const std::string& id) const;
  void write(const ServerSession& s);
  SessionState read(const std::string& id);
  void evict_locked();
  LanguageModel& model_;
  std::string fingerprint_, dir_;
  int64_t max_bytes_;
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<ServerSession>> sessions_;
  std::set<std::string> evicted_;  // dropped without a session dir: named in the 404
  uint64_t clock_ = 0;
  int64_t evictions_ = 0, next_id_ = 1;
};

}  // namespace pf
