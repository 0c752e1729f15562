#include "normalizers.hpp"

#include <vector>

#include <fmt/format.h>

#include "pattern.hpp"
#include "unicode_text.hpp"
#include "utf8.hpp"

namespace alignkit::tokenizer {

namespace {

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  std::string normalize(std::string text) const override {
    for (const auto& step : steps_)
      if (step) text = step->normalize(std::move(text));
    return text;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormalizationForm form) : form_(form) {}
  std::string normalize(std::string text) const override { return normalize_unicode(text, form_); }

 private:
  NormalizationForm form_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  std::string normalize(std::string text) const override { return pattern_.replace_all(text, content_); }

 private:
  Pattern pattern_;
  std::string content_;
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  // tokenizers.js prepends to any text (the sections it normalizes are never empty).
  std::string normalize(std::string text) const override { return prefix_ + text; }

 private:
  std::string prefix_;
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  std::string normalize(std::string text) const override {
    std::string_view view = text;
    if (left_) view = js_trim_start(view);
    if (right_) view = js_trim_end(view);
    return std::string(view);
  }

 private:
  bool left_, right_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  std::string normalize(std::string text) const override { return to_lower_unicode(text); }
};

class StripAccentsNormalizer final : public Normalizer {
 public:
  std::string normalize(std::string text) const override { return remove_marks(text); }
};

}  // namespace

std::unique_ptr<Normalizer> parse_normalizer(const JsonNode& node) {
  if (node.is_null()) return nullptr;
  node.expect_object();
  const std::string type = node.at("type").as_string();
  if (type == "Sequence") {
    node.expect_sequence_depth("normalizers");
    std::vector<std::unique_ptr<Normalizer>> steps;
    if (const auto list = node.find("normalizers"))
      for (std::size_t i = 0; i < list->size(); ++i) steps.push_back(parse_normalizer(list->at(i)));
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(NormalizationForm::nfc);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(NormalizationForm::nfd);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(NormalizationForm::nfkc);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(NormalizationForm::nfkd);
  if (type == "Replace")
    return std::make_unique<ReplaceNormalizer>(parse_pattern(node.at("pattern"), true), node.string_or("content", ""));
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(node.at("prepend").as_string());
  if (type == "Strip")
    return std::make_unique<StripNormalizer>(node.bool_or("strip_left", false), node.bool_or("strip_right", false));
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "StripAccents") return std::make_unique<StripAccentsNormalizer>();
  node.at("type").fail(fmt::format("unknown normalizer type `{}`", type),
                       "supported: Sequence, NFC, NFD, NFKC, NFKD, Replace, Prepend, Strip, Lowercase, StripAccents");
}

}  // namespace alignkit::tokenizer
