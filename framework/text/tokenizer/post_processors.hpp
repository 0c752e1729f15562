// tokenizer.json's `post_processor`: what encode adds around the ids when add_special_tokens is
// on (TemplateProcessing's `single` template, RobertaProcessing/BertProcessing's cls and sep).
// Only single sequences are encoded; token strings are resolved to ids at load.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "json_reader.hpp"

namespace alignkit::tokenizer {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  virtual void process(std::vector<int64_t>& ids, bool add_special_tokens) const = 0;
};

using TokenResolver = std::function<std::optional<int64_t>(const std::string&)>;

// nullptr for a null post-processor.
std::unique_ptr<PostProcessor> parse_post_processor(const JsonNode& node, const TokenResolver& resolve);

}  // namespace alignkit::tokenizer
