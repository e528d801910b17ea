// A program that embeds postformer: load a model, read a prompt, stream a continuation,
// then show that a forked session and a saved-and-restored one continue exactly as the
// original does. Usage: embed_demo MODEL_DIR [PROMPT] [TOKENS]
#include <postformer/postformer.h>

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL_DIR [PROMPT] [TOKENS]\n", argv[0]);
    return 2;
  }
  const std::string prompt = argc > 2 ? argv[2] : "In the beginning";
  const int64_t n = argc > 3 ? std::atoll(argv[3]) : 48;
  try {
    const postformer::Model model = postformer::Model::load(argv[1]);
    std::printf("model: %s, %.2fM parameters, vocabulary %ld\n", model.arch().c_str(),
                model.num_params() / 1e6, static_cast<long>(model.vocab_size()));
    postformer::Session s = model.open_session();
    s.feed_text(prompt);
    const std::string path = "embed_demo_state.safetensors";
    s.save(path);
    postformer::Session fork = s.fork();
    postformer::Session restored = model.open_session();
    restored.load(path);
    std::remove(path.c_str());

    postformer::Sampling sampling;
    sampling.temperature = 0.7f;
    std::printf("%s", prompt.c_str());
    s.seed(42);
    const std::string text = s.generate(n, sampling, [](const std::string& piece) {
      std::fputs(piece.c_str(), stdout);
      std::fflush(stdout);
      return true;
    });
    std::printf("\nposition %ld, state %ld bytes\n", static_cast<long>(s.position()),
                static_cast<long>(s.state_bytes()));
    fork.seed(42);
    restored.seed(42);
    const bool fork_ok = fork.generate(n, sampling) == text;
    const bool restore_ok = restored.generate(n, sampling) == text;
    std::printf("fork continues identically: %s\nrestored state continues identically: %s\n",
                fork_ok ? "yes" : "NO", restore_ok ? "yes" : "NO");
    return fork_ok && restore_ok ? 0 : 1;
  } catch (const postformer::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
