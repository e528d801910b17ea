// One generation request as the scheduler runs it, and the channel its tokens travel
// through to the HTTP thread that waits on it.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "infer/generate.h"
#include "serve/session_store.h"

namespace pf {

using Clock = std::chrono::steady_clock;

// What the scheduler tells the waiting handler: a piece of text with the token ids behind it,
// or the end (with its reason, or an error).
struct JobEvent {
  std::string text;
  std::vector<int32_t> ids;
  bool finished = false;
  std::string finish_reason;  // "stop", "length", "timeout", "cancelled", "error"
  std::string error;          // when finish_reason is "error"
};

// Thread-safe queue of events, written by the scheduler, read by one HTTP thread.
class JobChannel {
 public:
  void push(JobEvent e) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(std::move(e));
    }
    cv_.notify_all();
  }
  // Waits up to `timeout` for the next event; false when none came.
  bool pop(JobEvent* e, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return false;
    *e = std::move(events_.front());
    events_.pop_front();
    return true;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<JobEvent> events_;
};

struct Job {
  uint64_t id = 0;
  std::vector<int32_t> input;  // tokens to feed before the first sample: (n)
  GenerateOptions gen;         // max_new, sampling, seed, stop ids, masks
  std::vector<std::string> stop_strings;
  Clock::time_point enqueued = Clock::now(), deadline = Clock::time_point::max();
  std::shared_ptr<ServerSession> session;  // null for a one-off request
  SessionState session_state;              // checked out for this turn (sessions only)
  std::vector<ChatMessage> new_messages;   // join the session's history with the reply
  int64_t prompt_tokens = 0;               // as the client counts them (usage)
  std::string input_text;                  // the text of `input`: joins the session transcript
  std::string stop_id_text;                // how the template writes a stop id (eos_token)
  JobChannel out;
  std::atomic<bool> cancelled{false};  // set by the HTTP side: the client went away

  // Filled in as it runs (scheduler thread only, read by the handler after the end).
  int64_t generated = 0;
  double ttft_seconds = -1;  // enqueue to first sampled token
};

}  // namespace pf
