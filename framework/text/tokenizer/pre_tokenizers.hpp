// tokenizer.json's `pre_tokenizer`: splitting normalized text into the pieces the model encodes
// one by one (Split regexes, ByteLevel, Metaspace, Digits, ...), as tokenizers.js does.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "json_reader.hpp"

namespace alignkit::tokenizer {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Appends the pieces of `text` to `out`. `section_index` is the index of the text's section
  // among those the added tokens cut the input into (Metaspace's prepend_scheme "first" uses it).
  virtual void split(std::string_view text, int section_index, std::vector<std::string>& out) const = 0;
};

// nullptr for a null pre-tokenizer.
std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const JsonNode& node);

}  // namespace alignkit::tokenizer
