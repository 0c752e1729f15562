#include "post_processors.hpp"

#include <fmt/format.h>

namespace alignkit::tokenizer {

namespace {

// One item of a template: a special token's id, or the sequence itself.
struct TemplateItem {
  std::optional<int64_t> special_id;
};

class TemplateProcessor final : public PostProcessor {
 public:
  explicit TemplateProcessor(std::vector<TemplateItem> items) : items_(std::move(items)) {}
  void process(std::vector<int64_t>& ids, bool add_special_tokens) const override {
    std::vector<int64_t> out;
    out.reserve(ids.size() + items_.size());
    for (const auto& item : items_) {
      if (item.special_id) {
        if (add_special_tokens) out.push_back(*item.special_id);
      } else {
        out.insert(out.end(), ids.begin(), ids.end());
      }
    }
    ids.swap(out);
  }

 private:
  std::vector<TemplateItem> items_;
};

class ClsSepProcessor final : public PostProcessor {
 public:
  ClsSepProcessor(int64_t cls, int64_t sep) : cls_(cls), sep_(sep) {}
  void process(std::vector<int64_t>& ids, bool add_special_tokens) const override {
    if (!add_special_tokens) return;
    ids.insert(ids.begin(), cls_);
    ids.push_back(sep_);
  }

 private:
  int64_t cls_, sep_;
};

class SequenceProcessor final : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> steps) : steps_(std::move(steps)) {}
  void process(std::vector<int64_t>& ids, bool add_special_tokens) const override {
    for (const auto& step : steps_)
      if (step) step->process(ids, add_special_tokens);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

class IdentityProcessor final : public PostProcessor {
 public:
  void process(std::vector<int64_t>&, bool) const override {}
};

int64_t resolve_or_fail(const JsonNode& where, const std::string& token, const TokenResolver& resolve) {
  const auto id = resolve(token);
  if (!id) where.fail(fmt::format("the special token `{}` is neither in the vocabulary nor an added token", token));
  return *id;
}

}  // namespace

std::unique_ptr<PostProcessor> parse_post_processor(const JsonNode& node, const TokenResolver& resolve) {
  if (node.is_null()) return nullptr;
  node.expect_object();
  const auto type_node = node.at("type");
  const std::string type = type_node.as_string();
  if (type == "TemplateProcessing") {
    const auto single = node.at("single");
    std::vector<TemplateItem> items;
    for (std::size_t i = 0; i < single.size(); ++i) {
      const auto item = single.at(i);
      if (const auto special = item.find("SpecialToken")) {
        const auto id_node = special->at("id");
        items.push_back({resolve_or_fail(id_node, id_node.as_string(), resolve)});
      } else if (const auto sequence = item.find("Sequence")) {
        // tokenizers.js places the sequence for "A"; a "B" in a single template adds nothing.
        if (sequence->at("id").as_string() == "A") items.push_back({std::nullopt});
      } else {
        item.fail("expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
      }
    }
    return std::make_unique<TemplateProcessor>(std::move(items));
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    auto token_of = [&](const char* key) {
      const auto pair = node.at(key);
      if (pair.size() < 1) pair.fail_expected("[token, id]");
      const auto token = pair.at(std::size_t{0});
      return resolve_or_fail(token, token.as_string(), resolve);
    };
    return std::make_unique<ClsSepProcessor>(token_of("cls"), token_of("sep"));
  }
  if (type == "ByteLevel") return std::make_unique<IdentityProcessor>();
  if (type == "Sequence") {
    node.expect_sequence_depth("processors");
    std::vector<std::unique_ptr<PostProcessor>> steps;
    const auto list = node.at("processors");
    for (std::size_t i = 0; i < list.size(); ++i) steps.push_back(parse_post_processor(list.at(i), resolve));
    return std::make_unique<SequenceProcessor>(std::move(steps));
  }
  type_node.fail(fmt::format("unknown post-processor type `{}`", type),
                 "supported: TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence");
}

}  // namespace alignkit::tokenizer
