// tokenizer.json's `normalizer`: the text rewrites applied before pre-tokenization (Unicode
// normalization, lowercasing, Llama 2's Prepend("▁") + Replace(" ", "▁"), ...), with the behaviour
// tokenizers.js gives each type.
#pragma once

#include <memory>
#include <string>

#include "json_reader.hpp"

namespace alignkit::tokenizer {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual std::string normalize(std::string text) const = 0;
};

// nullptr for a null normalizer. Refuses unknown types and wrong fields with the JSON path.
std::unique_ptr<Normalizer> parse_normalizer(const JsonNode& node);

}  // namespace alignkit::tokenizer
