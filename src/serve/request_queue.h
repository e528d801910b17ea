// Requests waiting for a sequence slot, first come first served, bounded: a request that
// finds the queue full is refused (503) instead of waiting without end.
#pragma once
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>

#include "serve/job.h"

namespace pf {

class RequestQueue {
 public:
  explicit RequestQueue(size_t max_waiting) : max_(max_waiting) {}
  // False when `max_waiting` requests already wait.
  bool try_push(std::shared_ptr<Job> job);
  // The oldest waiting job, or null when none.
  std::shared_ptr<Job> pop();
  // Blocks until a job waits or `timeout` passes.
  void wait(std::chrono::milliseconds timeout);
  // Every waiting job, removed (at shutdown, or to drop those that gave up).
  std::deque<std::shared_ptr<Job>> take_all();
  size_t size();
  void notify() { cv_.notify_all(); }

 private:
  size_t max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> jobs_;
};

}  // namespace pf
