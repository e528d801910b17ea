// Turns the pieces of sampled tokens into text that is safe to send as it arrives: whole
// UTF-8 characters only (a byte-level model emits a character over several tokens), and
// nothing that could still become a stop string until it is known not to.
#pragma once
#include <string>
#include <vector>

namespace pf {

class TextAssembler {
 public:
  explicit TextAssembler(std::vector<std::string> stops = {});
  // Adds one token's text and returns what can be released now (valid UTF-8). When a stop
  // string completes, stopped() turns true, and the stop string and all after it are dropped.
  std::string push(const std::string& piece);
  // At the end of generation: what was held back (an unfinished character becomes U+FFFD).
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;  // raw bytes not yet released
  bool stopped_ = false;
};

// Bytes as valid UTF-8: every invalid or truncated sequence becomes U+FFFD.
std::string sanitize_utf8(const std::string& s);
// Length of the longest prefix of s that does not end inside an unfinished UTF-8 character
// (invalid bytes count as finished: they are replaced, not waited for).
size_t utf8_complete_prefix(const std::string& s);

}  // namespace pf
