#include "decoders.hpp"

#include <fmt/format.h>

#include "byte_level.hpp"
#include "pattern.hpp"
#include "utf8.hpp"

namespace alignkit::tokenizer {

namespace {

class ByteLevelDecoder final : public Decoder {
 public:
  explicit ByteLevelDecoder(const std::unordered_set<std::string>& added_tokens) : added_tokens_(added_tokens) {}

  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string bytes;
    auto flush = [&] {
      if (bytes.empty()) return;
      out.push_back(decode_utf8_lossy(bytes));
      bytes.clear();
    };
    const auto& alphabet = byte_level_alphabet();
    for (auto& token : tokens) {
      if (added_tokens_.count(token)) {
        flush();
        out.push_back(std::move(token));
        continue;
      }
      for (std::size_t pos = 0; pos < token.size();) {
        const auto cp = decode_code_point(token, pos);
        pos += cp.length;
        // A character outside the alphabet becomes byte 0, as Uint8Array stores undefined.
        const int byte = cp.value < alphabet.byte_of_code_point.size() ? alphabet.byte_of_code_point[cp.value] : -1;
        bytes.push_back(static_cast<char>(byte < 0 ? 0 : byte));
      }
    }
    flush();
    tokens.swap(out);
  }

 private:
  const std::unordered_set<std::string>& added_tokens_;
};

class MetaspaceDecoder final : public Decoder {
 public:
  explicit MetaspaceDecoder(std::string replacement) : replacement_(std::move(replacement)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      std::string normalized;
      const std::string& token = tokens[i];
      if (replacement_.empty()) {
        normalized = token;
      } else {
        std::size_t copied = 0;
        for (auto at = token.find(replacement_); at != std::string::npos; at = token.find(replacement_, copied)) {
          normalized.append(token, copied, at - copied);
          normalized += ' ';
          copied = at + replacement_.size();
        }
        normalized.append(token, copied);
      }
      if (i == 0 && !normalized.empty() && normalized.front() == ' ') normalized.erase(0, 1);
      tokens[i] = std::move(normalized);
    }
  }

 private:
  std::string replacement_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& token : tokens) token = pattern_.replace_all(token, content_);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string bytes;
    auto flush = [&] {
      if (bytes.empty()) return;
      std::string text = decode_utf8_lossy(bytes);
      // TextDecoder() drops a leading byte order mark.
      if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);
      out.push_back(std::move(text));
      bytes.clear();
    };
    for (auto& token : tokens) {
      // `<0xNN>`, read as parseInt(token.slice(3, 5), 16) reads it.
      int byte = -1;
      if (token.size() == 6 && token.compare(0, 3, "<0x") == 0 && token[5] == '>') {
        const int high = hex_value(token[3]);
        const int low = hex_value(token[4]);
        if (high >= 0) byte = low >= 0 ? high * 16 + low : high;
      }
      if (byte >= 0) {
        bytes.push_back(static_cast<char>(byte));
        continue;
      }
      flush();
      out.push_back(std::move(token));
    }
    flush();
    tokens.swap(out);
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string joined;
    for (const auto& token : tokens) joined += token;
    tokens.assign(1, std::move(joined));
  }
};

class StripDecoder final : public Decoder {
 public:
  StripDecoder(std::string content, int start, int stop) : content_(std::move(content)), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    // tokenizers.js compares one UTF-16 unit with `content`, so only a one-unit content strips.
    const bool single_unit = !content_.empty() && [&] {
      const auto cp = decode_code_point(content_, 0);
      return static_cast<std::size_t>(cp.length) == content_.size() && cp.value < 0x10000;
    }();
    if (!single_unit) return;
    for (auto& token : tokens) {
      std::size_t begin = 0, end = token.size();
      for (int i = 0; i < start_ && token.compare(begin, content_.size(), content_) == 0 && begin < end; ++i)
        begin += content_.size();
      // tokenizers.js cuts the end of the original token, which can overlap the start's cut.
      std::size_t stop_cut = token.size();
      for (int i = 0; i < stop_; ++i) {
        if (stop_cut < content_.size() || token.compare(stop_cut - content_.size(), content_.size(), content_) != 0)
          break;
        stop_cut -= content_.size();
      }
      end = stop_cut;
      token = begin < end ? token.substr(begin, end - begin) : std::string();
    }
  }

 private:
  std::string content_;
  int start_, stop_;
};

class BpeSuffixDecoder final : public Decoder {
 public:
  explicit BpeSuffixDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    if (suffix_.empty()) return;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const std::string with = i + 1 == tokens.size() ? "" : " ";
      std::string out;
      std::size_t copied = 0;
      const std::string& token = tokens[i];
      for (auto at = token.find(suffix_); at != std::string::npos; at = token.find(suffix_, copied)) {
        out.append(token, copied, at - copied);
        out += with;
        copied = at + suffix_.size();
      }
      out.append(token, copied);
      tokens[i] = std::move(out);
    }
  }

 private:
  std::string suffix_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps) : steps_(std::move(steps)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& step : steps_) step->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

}  // namespace

std::unique_ptr<Decoder> parse_decoder(const JsonNode& node, const std::unordered_set<std::string>& added_tokens) {
  if (node.is_null()) return nullptr;
  node.expect_object();
  const auto type_node = node.at("type");
  const std::string type = type_node.as_string();
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>(added_tokens);
  if (type == "Metaspace") return std::make_unique<MetaspaceDecoder>(node.string_or("replacement", "\xE2\x96\x81"));
  if (type == "Replace")
    return std::make_unique<ReplaceDecoder>(parse_pattern(node.at("pattern"), true), node.string_or("content", ""));
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    auto count = [&](const char* key) {
      const auto value = node.find(key);
      if (!value) return 0;
      const auto n = value->as_int();
      if (n < 0 || n > 1'000'000) value->fail_expected("a count from 0");
      return static_cast<int>(n);
    };
    return std::make_unique<StripDecoder>(node.string_or("content", ""), count("start"), count("stop"));
  }
  if (type == "BPEDecoder") return std::make_unique<BpeSuffixDecoder>(node.string_or("suffix", ""));
  if (type == "Sequence") {
    node.expect_sequence_depth("decoders");
    std::vector<std::unique_ptr<Decoder>> steps;
    const auto list = node.at("decoders");
    for (std::size_t i = 0; i < list.size(); ++i) {
      const auto step = list.at(i);
      if (step.is_null()) step.fail_expected("a decoder");
      steps.push_back(parse_decoder(step, added_tokens));
    }
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  type_node.fail(fmt::format("unknown decoder type `{}`", type),
                 "supported: ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, BPEDecoder, Sequence");
}

}  // namespace alignkit::tokenizer
