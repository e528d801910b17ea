#include "serve/request_queue.h"

namespace pf {

bool RequestQueue::try_push(std::shared_ptr<Job> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (jobs_.size() >= max_) return false;
    jobs_.push_back(std::move(job));
  }
  cv_.notify_all();
  return true;
}

std::shared_ptr<Job> RequestQueue::pop() {
  std::lock_guard<std::mutex> lock(mu_);
  if (jobs_.empty()) return nullptr;
  auto j = std::move(jobs_.front());
  jobs_.pop_front();
  return j;
}

void RequestQueue::wait(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return !jobs_.empty(); });
}

std::deque<std::shared_ptr<Job>> RequestQueue::take_all() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::exchange(jobs_, {});
}

size_t RequestQueue::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return jobs_.size();
}

}  // namespace pf
