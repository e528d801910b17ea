#include "data/sp_tokenizer.h"

#include <sentencepiece_processor.h>

#include <cmath>

#include "base/error.h"
#include "io/read_file.h"

namespace pf {
namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581 '▁', SentencePiece's space

// "<0xNN>" -> the byte NN, or nullopt when the piece is not spelled that way.
std::optional<char> byte_piece_value(const std::string& piece) {
  if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>') return std::nullopt;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(piece[3]), lo = hex(piece[4]);
  if (hi < 0 || lo < 0) return std::nullopt;
  return static_cast<char>(hi * 16 + lo);
}

std::string replace_space_marks(const std::string& piece) {
  std::string out;
  out.reserve(piece.size());
  for (size_t i = 0; i < piece.size();) {
    if (piece.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
      out += ' ';
      i += kSpaceMark.size();
    } else {
      out += piece[i++];
    }
  }
  return out;
}

std::optional<int32_t> reserved(int id) {
  return id >= 0 ? std::optional<int32_t>(id) : std::nullopt;
}

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer()
    : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {}
SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::from_file(const std::string& path) {
  std::unique_ptr<SentencePieceTokenizer> tok(new SentencePieceTokenizer());
  tok->load(path);
  return tok;
}

void SentencePieceTokenizer::load(const std::string& path) {
  path_ = path;
  // Read it ourselves: a FIFO or device must be refused, not waited on.
  const std::string bytes = read_file(path, uint64_t{1} << 30);
  sentencepiece::util::Status status;
  try {
    status = sp_->LoadFromSerializedProto(bytes);
  } catch (const std::exception& e) {
    // The library throws from inside its trie builder on some malformed models.
    fail(path, ": cannot load as a SentencePiece model (", e.what(), ")");
  }
  PF_CHECK(status.ok(), path, ": cannot load as a SentencePiece model (", status.ToString(), ")");
  const int n = sp_->GetPieceSize();
  PF_CHECK(n > 0, path, ": SentencePiece model has no pieces");
  for (int i = 0; i < n; ++i)
    PF_CHECK(std::isfinite(sp_->GetScore(i)), path, ": piece ", i, " has a non-finite score");
  bos_id_ = reserved(sp_->bos_id());
  eos_id_ = reserved(sp_->eos_id());
  unk_id_ = reserved(sp_->unk_id());

  // The unk surface lives in the trainer spec, whose proto header Debian does not ship; a
  // one-piece Decode of <unk> returns it.
  std::string unk_surface = " \xE2\x81\x87 ";
  if (unk_id_) {
    std::string text;
    if (sp_->Decode(std::vector<int>{*unk_id_}, &text).ok()) unk_surface = text;
  }

  id_bytes_.resize(n);
  for (int id = 0; id < n; ++id) {
    const std::string& p = sp_->IdToPiece(id);
    if (sp_->IsControl(id)) {
      id_bytes_[id].clear();  // <s>, </s>, <pad>: invisible, as in SentencePiece's Decode
    } else if (sp_->IsUnknown(id)) {
      id_bytes_[id] = unk_surface;
    } else if (sp_->IsByte(id)) {
      const auto b = byte_piece_value(p);
      PF_CHECK(b.has_value(), path, ": byte piece ", id, " is spelled '", p, "', expected <0xNN>");
      id_bytes_[id] = std::string(1, *b);
    } else {
      id_bytes_[id] = replace_space_marks(p);
    }
  }
}

void SentencePieceTokenizer::check_id(int32_t id) const {
  PF_CHECK(id >= 0 && static_cast<size_t>(id) < id_bytes_.size(), path_,
           ": SentencePiece token id ", id, " is outside [0, ", id_bytes_.size(), ")");
}

std::vector<int32_t> SentencePieceTokenizer::encode(const std::string& text) const {
  std::vector<int> ids;
  const auto status = sp_->Encode(text, &ids);
  PF_CHECK(status.ok(), path_, ": SentencePiece encode failed (", status.ToString(), ")");
  return std::vector<int32_t>(ids.begin(), ids.end());
}

std::vector<int32_t> SentencePieceTokenizer::encode_with_bos(const std::string& text) const {
  std::vector<int32_t> ids = encode(text);
  if (bos_id_) ids.insert(ids.begin(), *bos_id_);
  return ids;
}

std::string SentencePieceTokenizer::decode_token(int32_t id) const {
  check_id(id);
  return id_bytes_[id];
}

std::vector<int32_t> SentencePieceTokenizer::stop_ids() const {
  if (eos_id_) return {*eos_id_};
  return {};
}

const std::string& SentencePieceTokenizer::piece(int32_t id) const {
  check_id(id);
  return sp_->IdToPiece(id);
}

}  // namespace pf
