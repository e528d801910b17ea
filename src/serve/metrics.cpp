// /metrics in the Prometheus text format.
#include <sstream>

#include "serve/http_server.h"

namespace pf {

std::string HttpServer::metrics_text() {
  const SchedulerStats s = scheduler_->stats();
  const int64_t parked = sessions_->parked_bytes();
  std::ostringstream o;
  auto metric = [&](const char* name, const char* type, const char* help, double value) {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n'
      << name << ' ' << value << '\n';
  };
  o << "# HELP postformer_requests_total Requests answered, by route and status.\n"
       "# TYPE postformer_requests_total counter\n";
  {
    std::lock_guard<std::mutex> lock(count_mu_);
    for (const auto& [key, n] : requests_)
      o << "postformer_requests_total{route=\"" << key.first << "\",status=\"" << key.second
        << "\"} " << n << '\n';
  }
  metric("postformer_generated_tokens_total", "counter", "Tokens sampled.",
         static_cast<double>(s.generated_tokens));
  metric("postformer_prompt_tokens_total", "counter", "Prompt tokens read.",
         static_cast<double>(s.prompt_tokens));
  metric("postformer_decode_tokens_per_second", "gauge",
         "Tokens decoded per second over the last 10 s.", s.decode_tokens_per_s);
  metric("postformer_queue_depth", "gauge", "Requests waiting for a sequence slot.",
         static_cast<double>(s.queue_depth));
  metric("postformer_active_sequences", "gauge", "Sequences in the batch.",
         static_cast<double>(s.active));
  metric("postformer_sequence_slots", "gauge", "Sequence slots (--max-sequences).",
         static_cast<double>(s.slots));
  o << "# HELP postformer_state_memory_bytes Inference state held: by active sequences, and "
       "by sessions parked between turns.\n# TYPE postformer_state_memory_bytes gauge\n"
    << "postformer_state_memory_bytes{kind=\"active\"} " << s.slot_state_bytes << '\n'
    << "postformer_state_memory_bytes{kind=\"sessions\"} " << parked << '\n';
  metric("postformer_sessions", "gauge", "Sessions known (in memory or on disk).",
         static_cast<double>(sessions_->list().size()));
  metric("postformer_session_evictions_total", "counter",
         "Sessions evicted under --max-state-memory.", static_cast<double>(sessions_->evictions()));
  o << "# HELP postformer_time_to_first_token_seconds From a request's arrival to its first "
       "sampled token.\n# TYPE postformer_time_to_first_token_seconds summary\n"
    << "postformer_time_to_first_token_seconds_sum " << s.ttft_sum << '\n'
    << "postformer_time_to_first_token_seconds_count " << s.ttft_count << '\n';
  metric("postformer_requests_rejected_total", "counter", "Requests refused with 503: queue full.",
         static_cast<double>(rejected_.load()));
  metric("postformer_request_timeouts_total", "counter", "Requests that ran past the timeout.",
         static_cast<double>(timeouts_.load()));
  metric("postformer_client_disconnects_total", "counter", "Streams whose client went away.",
         static_cast<double>(disconnects_.load()));
  metric("postformer_scheduler_ticks_total", "counter", "Batched forwards run.",
         static_cast<double>(s.ticks));
  return o.str();
}

}  // namespace pf
