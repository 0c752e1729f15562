#include "added_tokens.hpp"

namespace alignkit::tokenizer {

AddedTokenSplitter::AddedTokenSplitter(const std::vector<std::string>& words) {
  word_length_.push_back(-1);
  for (const auto& word : words) {
    if (word.empty()) continue;  // tokenizers.js's trie never reports an empty word
    starts_word_[static_cast<unsigned char>(word[0])] = true;
    int32_t node = 0;
    for (unsigned char byte : word) {
      const uint64_t key = (static_cast<uint64_t>(node) << 8) | byte;
      const auto it = edges_.find(key);
      if (it != edges_.end()) {
        node = it->second;
      } else {
        const auto next = static_cast<int32_t>(word_length_.size());
        word_length_.push_back(-1);
        edges_.emplace(key, next);
        node = next;
      }
    }
    word_length_[node] = static_cast<int32_t>(word.size());
  }
}

int32_t AddedTokenSplitter::child(int32_t node, unsigned char byte) const {
  const auto it = edges_.find((static_cast<uint64_t>(node) << 8) | byte);
  return it == edges_.end() ? -1 : it->second;
}

void AddedTokenSplitter::split(std::string_view text, std::vector<std::string>& out) const {
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size();) {
    if (!starts_word_[static_cast<unsigned char>(text[i])]) {
      ++i;
      continue;
    }
    int32_t node = 0;
    int32_t match = -1;
    for (std::size_t j = i; j < text.size(); ++j) {
      node = child(node, static_cast<unsigned char>(text[j]));
      if (node < 0) break;
      if (word_length_[node] >= 0) match = word_length_[node];
    }
    if (match < 0) {
      ++i;
      continue;
    }
    if (i > start) out.emplace_back(text.substr(start, i - start));
    out.emplace_back(text.substr(i, match));
    i += match;
    start = i;
  }
  if (start < text.size()) out.emplace_back(text.substr(start));
}

}  // namespace alignkit::tokenizer
