// A real server on a free loopback port, over a tiny model saved to a temp directory, and
// a client that reads Server-Sent Events as they arrive.
#pragma once
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "data/tokenizer.h"
#include "infer/generate.h"
#include "io/checkpoint.h"
#include "serve/http_server.h"
#include "test_temp_dir.h"

namespace pf::test {

using nlohmann::json;

// A byte-level Mamba small enough that a test decodes thousands of tokens in a second.
inline json tiny_serve_mamba() {
  return {{"model_type", "mamba"}, {"hidden_size", 32},  {"num_hidden_layers", 2},
          {"vocab_size", 256},     {"state_size", 8},    {"tie_word_embeddings", true}};
}
inline json tiny_serve_llama() {
  return {{"model_type", "llama"},        {"hidden_size", 32},       {"intermediate_size", 48},
          {"num_hidden_layers", 2},       {"num_attention_heads", 4}, {"num_key_value_heads", 2},
          {"vocab_size", 256},            {"max_position_embeddings", 512},
          {"rms_norm_eps", 1e-5},         {"tie_word_embeddings", true}};
}

// A model directory that outlives the servers started on it.
inline std::string make_model_dir(const TempDir& dir, const json& config, uint64_t seed = 3) {
  auto m = create_model(config, seed);
  const std::string path = dir / "model";
  save_model(path, *m);
  return path;
}

class TestServer {
 public:
  TestServer(const std::string& model_dir, ServeOptions opt) {
    opt.host = "127.0.0.1";
    opt.port = 0;
    auto model = load_model(model_dir);
    auto tok = load_tokenizer(model_dir, model->vocab_size());
    server_ = std::make_unique<HttpServer>(std::move(model), std::move(tok), std::nullopt, opt);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->run(); });
  }
  ~TestServer() { stop(); }
  void stop() {
    if (!server_) return;
    server_->stop();
    thread_.join();
    server_.reset();
  }
  int port() const { return port_; }
  std::unique_ptr<httplib::Client> client() const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
    c->set_read_timeout(60);
    return c;
  }

 private:
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  int port_ = 0;
};

struct Reply {
  int status = 0;
  json body;
};

inline Reply post(const TestServer& s, const std::string& path, const json& body,
                  const std::string& key = "") {
  auto c = s.client();
  httplib::Headers h;
  if (!key.empty()) h.emplace("Authorization", "Bearer " + key);
  auto r = c->Post(path.c_str(), h, body.dump(), "application/json");
  if (!r) return {-1, json()};
  return {r->status, json::parse(r->body, nullptr, false)};
}

inline Reply get(const TestServer& s, const std::string& path) {
  auto r = s.client()->Get(path.c_str());
  if (!r) return {-1, json()};
  return {r->status, json::parse(r->body, nullptr, false)};
}

// One streamed request: its SSE data payloads in order, until [DONE] or until `keep`
// (asked after each event with the count so far) says no: then the connection is dropped,
// as by a client that leaves.
struct Stream {
  int status = 0;
  std::vector<json> events;
  bool done = false;
  std::string text;            // concatenated text / delta content
  std::vector<int32_t> ids;    // concatenated token_ids
  std::string finish_reason;
  std::string error;  // the client's error when there is no response
};

inline Stream post_stream(const TestServer& s, const std::string& path, json body,
                          std::function<bool(size_t)> keep = nullptr) {
  body["stream"] = true;
  Stream out;
  std::string buf;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    buf.append(data, n);
    for (size_t e; (e = buf.find("\n\n")) != std::string::npos;) {
      const std::string ev = buf.substr(0, e);
      buf.erase(0, e + 2);
      if (ev.rfind("data: ", 0) != 0) continue;  // comments (pings)
      const std::string payload = ev.substr(6);
      if (payload == "[DONE]") {
        out.done = true;
        continue;
      }
      json j = json::parse(payload);
      if (j.contains("choices")) {
        const json& c = j["choices"][0];
        if (c.contains("text")) out.text += c["text"].get<std::string>();
        if (c.contains("delta") && c["delta"].contains("content"))
          out.text += c["delta"]["content"].get<std::string>();
        if (c.contains("token_ids"))
          for (const auto& v : c["token_ids"]) out.ids.push_back(v.get<int32_t>());
        if (!c["finish_reason"].is_null()) out.finish_reason = c["finish_reason"];
      }
      out.events.push_back(std::move(j));
      if (keep && !keep(out.events.size())) return false;
    }
    return true;
  };
  auto c = s.client();
  auto r = c->send(req);
  out.status = r ? r->status : -1;
  if (!r) out.error = httplib::to_string(r.error());
  if (r && r->status != 200) out.events.push_back(json::parse(r->body, nullptr, false));
  return out;
}

inline std::vector<int32_t> ids_of(const json& reply) {
  std::vector<int32_t> v;
  for (const auto& x : reply["choices"][0]["token_ids"]) v.push_back(x.get<int32_t>());
  return v;
}

// What `generate` samples from the same model, prompt and seed: the reference.
inline std::vector<int32_t> reference_tokens(const std::string& model_dir,
                                             const std::vector<int32_t>& prompt, uint64_t seed,
                                             int64_t max_new, float temperature = 0.8f) {
  auto m = load_model(model_dir);
  auto s = m->new_session(4096);
  GenerateOptions g;
  g.max_new = max_new;
  g.seed = seed;
  g.sampling.temperature = temperature;
  g.valid_vocab = m->vocab_size();
  return generate(*s, prompt, g, nullptr);
}

inline std::vector<int32_t> bytes_of(const std::string& s) {
  return std::vector<int32_t>(reinterpret_cast<const unsigned char*>(s.data()),
                              reinterpret_cast<const unsigned char*>(s.data()) + s.size());
}

}  // namespace pf::test
