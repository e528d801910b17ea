// The embedding API (include/postformer/postformer.h) over the engine: a model is a
// LanguageModel and its tokenizer; a session is an InferenceSession and a sampler.
#include "postformer/postformer.h"

#include <algorithm>

#include "base/checks.h"
#include "base/error.h"
#include "base/rng.h"
#include "base/threads.h"
#include "data/tokenizer.h"
#include "infer/generate.h"
#include "infer/state_file.h"
#include "io/checkpoint.h"

namespace postformer {

struct Model::Impl {
  std::unique_ptr<pf::LanguageModel> model;
  std::unique_ptr<pf::Tokenizer> tok;
};

struct Session::Impl {
  std::shared_ptr<Model::Impl> m;
  std::unique_ptr<pf::InferenceSession> s;
  pf::Rng rng{1, 7};
};

namespace {
// Engine errors cross the API as postformer::Error.
template <typename F>
auto guard(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(e.what());
  }
}

pf::GenerateOptions options(const Model::Impl& m, const Sampling& s) {
  pf::GenerateOptions g;
  g.sampling = {s.temperature, s.top_k, s.top_p};
  g.valid_vocab = std::min(m.tok->vocab_size(), m.model->vocab_size());
  g.stop_ids = m.tok->stop_ids();
  g.banned_ids = m.tok->unused_ids();
  return g;
}
}  // namespace

Model Model::load(const std::string& dir, int threads) {
  return guard([&] {
    pf::set_num_threads(threads);
    Model out;
    out.impl_ = std::make_shared<Impl>();
    out.impl_->model = pf::load_model(dir);
    out.impl_->tok =
        pf::load_tokenizer(pf::resolve_checkpoint_dir(dir), out.impl_->model->vocab_size());
    return out;
  });
}

std::string Model::arch() const { return impl_->model->arch(); }
int64_t Model::vocab_size() const { return impl_->model->vocab_size(); }
int64_t Model::max_context() const { return impl_->model->max_context(); }
bool Model::recurrent() const { return impl_->model->recurrent(); }
int64_t Model::num_params() const { return impl_->model->num_params(); }

std::vector<int32_t> Model::encode(const std::string& text, bool at_start) const {
  return guard([&] { return at_start ? impl_->tok->encode_prompt(text) : impl_->tok->encode(text); });
}

std::string Model::decode(const std::vector<int32_t>& ids) const {
  return guard([&] { return impl_->tok->decode(ids); });
}

Session Model::open_session(int64_t context) const {
  return guard([&] {
    pf::check_range("context", context, 0, impl_->model->max_context());
    const int64_t cap =
        context > 0 ? context : std::min<int64_t>(impl_->model->max_context(), 4096);
    Session s;
    s.impl_ = std::make_shared<Session::Impl>();
    s.impl_->m = impl_;
    s.impl_->s = impl_->model->new_session(cap);
    return s;
  });
}

void Session::feed(const std::vector<int32_t>& ids) {
  guard([&] {
    if (ids.empty()) return;
    impl_->s->forward(ids.data(), static_cast<int64_t>(ids.size()), false);
  });
}

void Session::feed_text(const std::string& text) {
  guard([&] {
    feed(position() == 0 ? impl_->m->tok->encode_prompt(text) : impl_->m->tok->encode(text));
  });
}

void Session::seed(uint64_t seed) { impl_->rng = pf::Rng(seed, 7); }

int32_t Session::sample(const Sampling& s) {
  return guard([&] {
    if (!impl_->s->last_logits().defined())
      throw Error("sample: the session has read no tokens yet");
    pf::Tensor logits = impl_->s->last_logits().clone();  // (1, V)
    return pf::pick_next_token(logits.data(), logits.size(1), options(*impl_->m, s), impl_->rng,
                               impl_->s->position());
  });
}

std::string Session::generate(int64_t max_tokens, const Sampling& s,
                              const std::function<bool(const std::string&)>& on_text) {
  return guard([&] {
    const pf::GenerateOptions g = options(*impl_->m, s);
    std::string out;
    for (int64_t i = 0; i < max_tokens; ++i) {
      if (impl_->s->position() >= impl_->s->capacity()) break;
      const int32_t tok = sample(s);
      feed({tok});
      if (std::find(g.stop_ids.begin(), g.stop_ids.end(), tok) != g.stop_ids.end()) break;
      const std::string piece = impl_->m->tok->decode_token(tok);
      out += piece;
      if (on_text && !on_text(piece)) break;
    }
    return out;
  });
}

std::vector<float> Session::logits() const {
  return guard([&] {
    const pf::Tensor& l = impl_->s->last_logits();
    if (!l.defined()) throw Error("logits: the session has read no tokens yet");
    return std::vector<float>(l.data(), l.data() + l.numel());
  });
}

int64_t Session::position() const { return impl_->s->position(); }

int64_t Session::state_bytes() const {
  return impl_->m->model->state_bytes(std::max<int64_t>(1, position()));
}

void Session::save(const std::string& path) const {
  guard([&] {
    pf::check_state_path(path);
    pf::save_session_state(path, *impl_->m->model, *impl_->s);
  });
}

void Session::load(const std::string& path) {
  guard([&] { pf::load_session_state(path, *impl_->m->model, *impl_->s); });
}

Session Session::fork() const {
  return guard([&] {
    Session out;
    out.impl_ = std::make_shared<Impl>();
    out.impl_->m = impl_->m;
    out.impl_->s = impl_->m->model->new_session(impl_->s->capacity());
    out.impl_->rng = impl_->rng;
    if (impl_->s->position() > 0) {
      out.impl_->s->import_state(impl_->s->export_state(), impl_->s->position());
      out.impl_->s->set_last_logits(impl_->s->last_logits().clone());
    }
    return out;
  });
}

}  // namespace postformer
