// The scheduler of sequence slots: one thread that owns the model's state pool and, each
// tick, advances every active sequence in one batched forward: all decoding rows first
// (one token each), then prompt chunks up to a token budget. Requests join from the queue
// when a slot is free and leave when they finish, are cancelled or time out, without
// stalling the others.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "data/tokenizer.h"
#include "models/core/decoder_lm.h"
#include "serve/job.h"
#include "serve/request_queue.h"
#include "serve/text_stream.h"

namespace pf {

struct SchedulerOptions {
  int64_t max_sequences = 32;  // slots: sequences that advance together
  int64_t max_queue = 64;      // requests that may wait for a slot
  int64_t batch_tokens = 256;  // prompt tokens per tick beside the decoding rows
  int64_t capacity = 0;        // tokens a slot holds (KV cache); recurrent: unbounded
};

struct SchedulerStats {
  int64_t queue_depth = 0, active = 0, slots = 0;
  int64_t slot_state_bytes = 0;  // memory the active sequences' states hold
  int64_t generated_tokens = 0, prompt_tokens = 0, requests_done = 0, ticks = 0;
  double ttft_sum = 0;  // seconds, over ttft_count requests
  int64_t ttft_count = 0;
  double decode_tokens_per_s = 0;  // over the last 10 s
};

class Scheduler {
 public:
  Scheduler(DecoderLM& model, const Tokenizer& tok, SessionStore& sessions, SchedulerOptions opt);
  ~Scheduler();
  // Queues a job; false when every slot is taken and max_queue jobs already wait (the
  // caller answers 503).
  bool submit(std::shared_ptr<Job> job);
  SchedulerStats stats();
  // Finishes every job ("error": shutting down), checks sessions back in, joins the thread.
  void stop();
  int64_t capacity() const { return opt_.capacity; }

 private:
  struct Active {
    std::shared_ptr<Job> job;
    int64_t slot = -1;
    std::vector<int32_t> input;  // (n) fed before the first sample
    size_t fed = 0;
    int32_t next = -1;    // sampled, fed as a decode row next tick
    bool started = false;  // the slot holds the session's state (else the session keeps its own)
    Rng rng;
    TextAssembler text;
    std::vector<int32_t> unsent;  // ids whose text is still held back
    std::string reply;            // all text released (for the session's history)
    std::string raw;              // every sampled token's text (for the session transcript)
  };
  void loop();
  void admit();
  void tick();
  // Ends a job: last text, its end event, the slot back, the session checked in.
  void finish(Active& a, const std::string& reason, const std::string& error = "");
  void emit(Active& a, int32_t tok);

  DecoderLM& model_;
  const Tokenizer& tok_;
  SessionStore& sessions_;
  SchedulerOptions opt_;
  RequestQueue queue_;
  std::unique_ptr<StatePool> pool_;
  std::vector<std::unique_ptr<Active>> active_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> admitted_{0};  // jobs queued or in a slot, not yet finished
  std::thread thread_;
  std::mutex stats_mu_;
  SchedulerStats stats_;
  std::vector<std::pair<double, int64_t>> recent_;  // (time s, tokens) of recent ticks
};

}  // namespace pf
