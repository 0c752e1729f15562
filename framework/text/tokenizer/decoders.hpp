// tokenizer.json's `decoder`: turning token strings back into text (ByteLevel, Metaspace, and
// SentencePiece's Replace + ByteFallback + Fuse + Strip chain), as tokenizers.js does, including
// how it repairs invalid UTF-8 (TextDecoder's U+FFFD per maximal subpart).
#pragma once

#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "json_reader.hpp"

namespace alignkit::tokenizer {

class Decoder {
 public:
  virtual ~Decoder() = default;
  // One step of the chain: tokens in, tokens out (the final text is their concatenation).
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// nullptr for a null decoder. `added_tokens` holds the content of every added token (the
// ByteLevel decoder passes them through unmapped); it must outlive the decoder.
std::unique_ptr<Decoder> parse_decoder(const JsonNode& node, const std::unordered_set<std::string>& added_tokens);

}  // namespace alignkit::tokenizer
