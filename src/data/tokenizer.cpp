#include "data/tokenizer.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/error.h"
#include "data/bpe_tokenizer.h"
#include "data/sp_tokenizer.h"
#include "io/read_file.h"

namespace pf {

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) out += decode_token(id);
  return out;
}

std::vector<int32_t> ByteTokenizer::encode(const std::string& text) const {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

std::string ByteTokenizer::decode_token(int32_t id) const {
  PF_CHECK(id >= 0 && id < 256, "byte tokenizer: token id ", id, " is outside [0, 256)");
  return std::string(1, static_cast<char>(id));
}

bool has_tokenizer_files(const std::string& model_dir) {
  namespace fs = std::filesystem;
  for (const char* f : {"tokenizer.json", "tokenizer.model"})
    if (fs::exists(fs::path(model_dir) / f)) return true;
  return false;
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_dir) {
  namespace fs = std::filesystem;
  const fs::path hf_json = fs::path(model_dir) / "tokenizer.json";
  if (fs::exists(hf_json)) return BpeTokenizer::from_file(hf_json.string());
  // tokenizer.json wins when both exist: it is what Hugging Face's fast tokenizers load.
  const fs::path sp_model = fs::path(model_dir) / "tokenizer.model";
  if (fs::exists(sp_model)) return SentencePieceTokenizer::from_file(sp_model.string());
  return std::make_unique<ByteTokenizer>();
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_dir, int64_t model_vocab) {
  auto tok = load_tokenizer(model_dir);
  PF_CHECK(tok->vocab_size() <= model_vocab, model_dir, ": the ", tok->name(), " tokenizer has ",
           tok->vocab_size(), " ids but the model only ", model_vocab,
           " embedding rows; they do not belong together");
  return tok;
}

std::vector<int32_t> read_token_file(const std::string& path) {
  std::istringstream in(read_file(path));
  std::vector<int32_t> ids;
  std::string word;
  while (in >> word) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(word, &used);
    } catch (...) {
      used = 0;
    }
    PF_CHECK(used == word.size() && v >= 0 && v <= INT32_MAX, path, ": '", word,
             "' is not a token id (entry ", ids.size() + 1, ")");
    ids.push_back(static_cast<int32_t>(v));
  }
  PF_CHECK(!ids.empty(), path, ": no token ids");
  return ids;
}

}  // namespace pf
