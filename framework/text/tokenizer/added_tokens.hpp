// Added tokens (`added_tokens` of tokenizer.json): cutting the input at their occurrences before
// normalization, longest match first, as tokenizers.js's DictionarySplitter does.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace alignkit::tokenizer {

struct AddedToken {
  int64_t id = 0;
  std::string content;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool single_word = false;  // read but, as in tokenizers.js, not applied
};

class AddedTokenSplitter {
 public:
  explicit AddedTokenSplitter(const std::vector<std::string>& words);

  // The text cut into pieces: runs of ordinary text and whole occurrences of the words (at each
  // position the longest word that starts there), in order; no empty pieces.
  void split(std::string_view text, std::vector<std::string>& out) const;

 private:
  int32_t child(int32_t node, unsigned char byte) const;

  std::array<bool, 256> starts_word_{};
  std::unordered_map<uint64_t, int32_t> edges_;  // (node << 8 | byte) -> node
  std::vector<int32_t> word_length_;             // per node: length of the word ending there, or -1
};

}  // namespace alignkit::tokenizer
