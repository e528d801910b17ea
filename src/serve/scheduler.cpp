#include "serve/scheduler.h"

#include <algorithm>

#include "autograd/tape.h"
#include "base/error.h"

namespace pf {

namespace {
double now_s() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }
}  // namespace

Scheduler::Scheduler(DecoderLM& model, const Tokenizer& tok, SessionStore& sessions,
                     SchedulerOptions opt)
    : model_(model), tok_(tok), sessions_(sessions), opt_(opt),
      queue_(static_cast<size_t>(std::max<int64_t>(opt.max_sequences, 1) +
                                 std::max<int64_t>(opt.max_queue, 0))) {
  PF_CHECK(opt_.max_sequences >= 1, "--max-sequences must be at least 1");
  PF_CHECK(opt_.batch_tokens >= 1, "--batch-tokens must be at least 1");
  if (model_.recurrent()) opt_.capacity = kUnboundedContext;
  PF_CHECK(opt_.capacity >= 1, "the slot capacity must be at least 1 token");
  pool_ = model_.new_pool(opt_.max_sequences, opt_.capacity);
  stats_.slots = opt_.max_sequences;
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() { stop(); }

bool Scheduler::submit(std::shared_ptr<Job> job) {
  if (stop_) return false;
  // A free slot takes a request at once; beyond the slots, max_queue may wait.
  const int64_t limit = opt_.max_sequences + std::max<int64_t>(opt_.max_queue, 0);
  int64_t n = admitted_.load();
  do {
    if (n >= limit) return false;
  } while (!admitted_.compare_exchange_weak(n, n + 1));
  if (queue_.try_push(std::move(job))) return true;
  --admitted_;
  return false;
}

SchedulerStats Scheduler::stats() {
  std::lock_guard<std::mutex> lock(stats_mu_);
  SchedulerStats s = stats_;
  s.queue_depth = static_cast<int64_t>(queue_.size());
  const double t = now_s();
  int64_t n = 0;
  double first = t;
  for (const auto& [when, count] : recent_)
    if (when >= t - 10) n += count, first = std::min(first, when);
  s.decode_tokens_per_s = t - first > 0.05 ? n / (t - first) : 0;
  return s;
}

void Scheduler::stop() {
  if (stop_.exchange(true)) return;
  queue_.notify();
  if (thread_.joinable()) thread_.join();
}

void Scheduler::loop() {
  while (!stop_) {
    try {
      admit();
      if (active_.empty()) {
        {
          std::lock_guard<std::mutex> lock(stats_mu_);
          stats_.active = 0;
          stats_.slot_state_bytes = 0;
        }
        queue_.wait(std::chrono::milliseconds(50));
        continue;
      }
      tick();
    } catch (const std::exception& e) {
      // A failed forward leaves the batch's states unreliable: end those jobs, keep serving.
      for (auto& a : active_) finish(*a, "error", e.what());
      active_.clear();
    }
  }
  for (auto& a : active_) finish(*a, "error", "the server is shutting down");
  active_.clear();
  for (auto& job : queue_.take_all()) {
    if (job->session) sessions_.check_in(job->session, std::move(job->session_state));
    job->out.push({"", {}, true, "error", "the server is shutting down"});
    --admitted_;
  }
}

void Scheduler::admit() {
  while (static_cast<int64_t>(active_.size()) < opt_.max_sequences) {
    std::shared_ptr<Job> job = queue_.pop();
    if (!job) return;
    auto a = std::make_unique<Active>();
    a->job = job;
    a->rng = Rng(job->gen.seed, 7);  // as `generate` seeds it: same seed, same text
    a->text = TextAssembler(job->stop_strings);
    a->slot = pool_->acquire();
    a->input = job->input;
    try {
      if (job->session) {
        SessionState& st = job->session_state;
        if (!st.tensors.empty()) pool_->load(a->slot, st.tensors, st.position);
        a->input.insert(a->input.begin(), st.pending.begin(), st.pending.end());
      }
      PF_CHECK(!a->input.empty(), "nothing to feed: the prompt is empty");
      PF_CHECK(pool_->position(a->slot) + static_cast<int64_t>(a->input.size()) <= opt_.capacity,
               "the prompt needs ", pool_->position(a->slot) + a->input.size(),
               " tokens of context; a slot holds ", opt_.capacity);
    } catch (const std::exception& e) {
      active_.push_back(std::move(a));
      finish(*active_.back(), "error", e.what());
      active_.pop_back();
      continue;
    }
    a->started = true;
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      stats_.prompt_tokens += static_cast<int64_t>(job->input.size());
    }
    active_.push_back(std::move(a));
  }
}

void Scheduler::tick() {
  const Clock::time_point now = Clock::now();
  // Cancelled and timed-out jobs leave first, so their slots are free for this tick.
  for (auto& a : active_) {
    if (a->job->cancelled)
      finish(*a, "cancelled");
    else if (now > a->job->deadline)
      finish(*a, "timeout");
  }
  active_.erase(std::remove_if(active_.begin(), active_.end(), [](const auto& a) { return !a->job; }),
                active_.end());
  if (active_.empty()) return;

  SeqBatch batch;
  std::vector<int32_t> tokens;  // (rows) sequence-major
  std::vector<Active*> order;   // run i belongs to order[i]
  for (auto& a : active_)
    if (a->next >= 0) {
      batch.add(a->slot, pool_->position(a->slot), 1);
      tokens.push_back(a->next);
      order.push_back(a.get());
    }
  const int64_t decode_rows = static_cast<int64_t>(order.size());
  int64_t budget = std::max<int64_t>(1, opt_.batch_tokens - decode_rows);
  const int64_t chunk = model_.spec().prefill_chunk;
  for (auto& a : active_) {
    if (a->next >= 0 || budget <= 0) continue;
    const int64_t left = static_cast<int64_t>(a->input.size() - a->fed);
    const int64_t len = std::min({left, budget, chunk});
    batch.add(a->slot, pool_->position(a->slot), len);
    tokens.insert(tokens.end(), a->input.begin() + a->fed, a->input.begin() + a->fed + len);
    order.push_back(a.get());
    budget -= len;
  }
  Tensor logits = model_.forward_cached(tokens.data(), batch, *pool_);  // (runs, V)
  const int64_t V = logits.size(1);
  for (size_t i = 0; i < order.size(); ++i) {
    Active& a = *order[i];
    const int64_t len = batch.runs()[i].len;
    if (a.next >= 0)
      a.next = -1;
    else
      a.fed += static_cast<size_t>(len);
    if (a.fed < a.input.size()) continue;  // more prompt to read
    float* row = logits.data() + static_cast<int64_t>(i) * V;
    const int32_t tok = pick_next_token(row, V, a.job->gen, a.rng, pool_->position(a.slot));
    emit(a, tok);
  }
  int64_t slot_bytes = 0;
  for (auto& a : active_)
    if (a->job) slot_bytes += pool_->bytes(a->slot);
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.ticks;
    stats_.active = static_cast<int64_t>(
        std::count_if(active_.begin(), active_.end(), [](const auto& a) { return a->job != nullptr; }));
    stats_.slot_state_bytes = slot_bytes;
    const double t = now_s();
    recent_.emplace_back(t, decode_rows);
    if (recent_.size() > 4096 || (!recent_.empty() && recent_.front().first < t - 10))
      recent_.erase(recent_.begin(),
                    std::find_if(recent_.begin(), recent_.end(),
                                 [&](const auto& p) { return p.first >= t - 10; }));
  }
  active_.erase(std::remove_if(active_.begin(), active_.end(), [](const auto& a) { return !a->job; }),
                active_.end());
}

void Scheduler::emit(Active& a, int32_t tok) {
  Job& job = *a.job;
  if (job.generated == 0) {
    job.ttft_seconds = std::chrono::duration<double>(Clock::now() - job.enqueued).count();
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.ttft_sum += job.ttft_seconds;
    ++stats_.ttft_count;
  }
  ++job.generated;
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.generated_tokens;
  }
  a.unsent.push_back(tok);
  const auto& stops = job.gen.stop_ids;
  const bool stop_id = std::find(stops.begin(), stops.end(), tok) != stops.end();
  a.raw += stop_id ? (job.stop_id_text.empty() ? tok_.decode_token(tok) : job.stop_id_text)
                   : tok_.decode_token(tok);
  if (!stop_id) {
    std::string text = a.text.push(tok_.decode_token(tok));
    if (!text.empty()) {
      a.reply += text;
      job.out.push({std::move(text), std::exchange(a.unsent, {}), false, "", ""});
    }
  }
  // The token is kept as pending either way, so a session continues exactly after it.
  a.next = tok;
  if (stop_id || a.text.stopped())
    finish(a, "stop");
  else if (job.generated >= job.gen.max_new || pool_->position(a.slot) >= opt_.capacity)
    finish(a, "length");
}

void Scheduler::finish(Active& a, const std::string& reason, const std::string& error) {
  if (!a.job) return;
  Job& job = *a.job;
  std::string tail = a.text.flush();
  a.reply += tail;
  if (!tail.empty() || !a.unsent.empty())
    job.out.push({std::move(tail), std::exchange(a.unsent, {}), false, "", ""});
  if (job.session && !a.started) {
    sessions_.check_in(job.session, std::move(job.session_state));
  } else if (job.session) {
    SessionState st = std::move(job.session_state);
    try {
      st.tensors = pool_->save(a.slot);
      for (auto& [name, t] : st.tensors) t = t.clone();  // owns its memory, not the pool's
      st.position = pool_->position(a.slot);
      // What the state has not read yet: the rest of the prompt, or the last sample.
      st.pending.assign(a.input.begin() + std::min(a.fed, a.input.size()), a.input.end());
      if (a.next >= 0) st.pending.push_back(a.next);
      st.transcript += job.input_text + sanitize_utf8(a.raw);
      if (!job.new_messages.empty()) {
        st.history.insert(st.history.end(), job.new_messages.begin(), job.new_messages.end());
        st.history.push_back({"assistant", a.reply});
      }
      ++st.turns;
    } catch (const std::exception&) {
      st.tensors.clear();  // could not be read back: the session restarts empty
      st.position = 0;
    }
    sessions_.check_in(job.session, std::move(st));
  }
  if (a.slot >= 0) pool_->release(a.slot);
  a.slot = -1;
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.requests_done;
  }
  job.out.push({"", {}, true, reason, error});
  a.job.reset();
  --admitted_;
}

}  // namespace pf
