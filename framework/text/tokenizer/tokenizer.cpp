// alignkit::Tokenizer: loading tokenizer.json and its companions, and the encode/decode pipeline
// of tokenizers.js (src/core/Tokenizer.ts): added-token split, normalizer, pre-tokenizer, BPE
// model, post-processor; decoder and clean-up on the way back.
#include <alignkit/tokenizer.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <unordered_set>

#include <fmt/format.h>

#include <alignkit/diagnostic.hpp>
#include <alignkit/json_file.hpp>

#include "added_tokens.hpp"
#include "bpe_model.hpp"
#include "decoders.hpp"
#include "json_reader.hpp"
#include "normalizers.hpp"
#include "post_processors.hpp"
#include "pre_tokenizers.hpp"
#include "unicode_text.hpp"
#include "utf8.hpp"

namespace alignkit {

using namespace alignkit::tokenizer;
namespace fs = std::filesystem;

struct Tokenizer::Impl {
  fs::path origin;
  std::string file;  // origin as a string, for messages

  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<BpeModel> model;
  std::unique_ptr<PostProcessor> post_processor;
  std::unique_ptr<Decoder> decoder;

  std::vector<AddedToken> added_tokens;
  // tokenizers.js's added_tokens_map: content, and normalized content, to the token.
  std::unordered_map<std::string, std::size_t, StringHash, std::equal_to<>> added_by_key;
  TokenIds added_ids;        // the same keys, to the token's id (what the model consults)
  TokenIds added_contents;   // content -> id only (token_to_id)
  std::unordered_set<std::string> added_content_set;  // for the ByteLevel decoder
  std::unique_ptr<AddedTokenSplitter> unnormalized_splitter;
  std::unique_ptr<AddedTokenSplitter> normalized_splitter;  // null when no token is normalized

  std::vector<std::string> tokens_by_id;
  std::vector<bool> has_token;
  std::unordered_set<std::string> special_tokens;  // what skip_special_tokens drops
  std::unordered_set<int64_t> special_ids;

  bool remove_space = false;
  bool clean_up_tokenization_spaces = true;
  bool lowercase_and_remove_accents = false;

  std::optional<std::string> bos, eos, pad, unk;
  std::optional<bool> add_bos, add_eos;
  std::optional<std::string> chat_template;

  void encode_into(std::string_view text, std::vector<int64_t>& ids) const;
  void split_on_added(const AddedTokenSplitter& splitter, std::string_view text, std::vector<std::string>& out) const;
  const AddedToken* added(std::string_view key) const {
    const auto it = added_by_key.find(key);
    return it == added_by_key.end() ? nullptr : &added_tokens[it->second];
  }
};

namespace {

std::optional<std::string> read_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_file_error(path.string(), "cannot open the file for reading");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// A special token in tokenizer_config.json / special_tokens_map.json: "<s>" or {"content": "<s>"}.
std::optional<std::string> special_token_text(const JsonNode& config, const char* key) {
  const auto node = config.find(key);
  if (!node) return std::nullopt;
  if (node->value().is_string()) return node->as_string();
  if (node->value().is_object()) return node->at("content").as_string();
  node->fail_expected("a token: a string or an object with `content`");
}

// JavaScript's clean_up_tokenization: spaces before punctuation and English contractions.
std::string clean_up_tokenization(std::string text) {
  static const std::pair<std::string_view, std::string_view> rules[] = {
      {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
      {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : rules) {
    if (text.find(from) == std::string::npos) continue;
    std::string out;
    std::size_t copied = 0;
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from, copied)) {
      out.append(text, copied, at - copied);
      out += to;
      copied = at + from.size();
    }
    out.append(text, copied);
    text = std::move(out);
  }
  return text;
}

// tokenizers.js's remove_space: trim, then collapse each run of whitespace to one space.
std::string collapse_whitespace(std::string_view text) {
  text = js_trim_end(js_trim_start(text));
  std::string out;
  bool in_space = false;
  for (std::size_t pos = 0; pos < text.size();) {
    const auto cp = decode_code_point(text, pos);
    if (is_js_whitespace(cp.value)) {
      in_space = true;
    } else {
      if (in_space) out += ' ';
      in_space = false;
      out.append(text.substr(pos, cp.length));
    }
    pos += cp.length;
  }
  return out;
}

std::unique_ptr<Tokenizer::Impl> load(const Json& root_json, std::string origin, const Json& config_json,
                                      const std::string& config_file, const Json* special_map_json,
                                      const std::string& special_map_file) {
  auto impl = std::make_unique<Tokenizer::Impl>();
  impl->origin = origin;
  impl->file = std::move(origin);
  const JsonNode root(root_json, impl->file, "");
  root.expect_object();

  impl->model = [&] {
    const auto model = root.at("model");
    model.expect_object();
    std::string type;
    if (const auto type_node = model.find("type")) {
      type = type_node->as_string();
      if (type != "BPE")
        type_node->fail(fmt::format("unsupported model type `{}`", type), "supported: BPE (byte-level and SentencePiece-style)");
    } else if (!model.has("merges")) {
      model.fail("missing key `type` (and no `merges`, so this is not a BPE model)");
    }
    return std::make_unique<BpeModel>(model);
  }();
  auto optional_member = [&](const char* key) -> JsonNode {
    static const Json null_value;
    return root.has(key) ? root.at(key) : JsonNode(null_value, impl->file, key);
  };
  impl->normalizer = parse_normalizer(optional_member("normalizer"));
  impl->pre_tokenizer = parse_pre_tokenizer(optional_member("pre_tokenizer"));

  // Added tokens: they join the vocabulary, and the input is cut at them before normalizing.
  std::vector<std::string> unnormalized, normalized;
  if (const auto list = root.find("added_tokens")) {
    for (std::size_t i = 0; i < list->size(); ++i) {
      const auto node = list->at(i);
      AddedToken token;
      const auto id_node = node.at("id");
      token.id = id_node.as_int();
      if (token.id < 0 || token.id > INT32_MAX) id_node.fail_expected("a token id (an integer from 0)");
      token.content = node.at("content").as_string();
      token.special = node.bool_or("special", false);
      token.lstrip = node.bool_or("lstrip", false);
      token.rstrip = node.bool_or("rstrip", false);
      token.single_word = node.bool_or("single_word", false);
      token.normalized = node.bool_or("normalized", !token.special);
      impl->added_tokens.push_back(token);
    }
  }
  for (std::size_t i = 0; i < impl->added_tokens.size(); ++i) {
    const auto& token = impl->added_tokens[i];
    impl->added_by_key[token.content] = i;
    impl->added_ids[token.content] = static_cast<int32_t>(token.id);
    impl->added_contents[token.content] = static_cast<int32_t>(token.id);
    impl->added_content_set.insert(token.content);
    if (token.special) {
      impl->special_tokens.insert(token.content);
      impl->special_ids.insert(token.id);
    }
    if (token.normalized && impl->normalizer) {
      std::string key = impl->normalizer->normalize(token.content);
      impl->added_by_key[key] = i;
      impl->added_ids[key] = static_cast<int32_t>(token.id);
      normalized.push_back(std::move(key));
    } else {
      unnormalized.push_back(token.content);
    }
  }
  impl->unnormalized_splitter = std::make_unique<AddedTokenSplitter>(unnormalized);
  if (!normalized.empty()) impl->normalized_splitter = std::make_unique<AddedTokenSplitter>(normalized);
  impl->model->set_added_tokens(impl->added_ids);

  impl->tokens_by_id = impl->model->tokens();
  impl->has_token.assign(impl->tokens_by_id.size(), false);
  for (const auto& [token, id] : impl->model->vocab()) impl->has_token[id] = true;
  for (const auto& token : impl->added_tokens) {
    const auto id = static_cast<std::size_t>(token.id);
    if (id >= impl->tokens_by_id.size()) {
      impl->tokens_by_id.resize(id + 1);
      impl->has_token.resize(id + 1, false);
    }
    impl->tokens_by_id[id] = token.content;
    impl->has_token[id] = true;
  }

  const TokenResolver resolve = [&](const std::string& token) -> std::optional<int64_t> {
    if (const auto it = impl->added_ids.find(token); it != impl->added_ids.end()) return it->second;
    if (const auto it = impl->model->vocab().find(token); it != impl->model->vocab().end()) return it->second;
    return std::nullopt;
  };
  impl->post_processor = parse_post_processor(optional_member("post_processor"), resolve);
  impl->decoder = parse_decoder(optional_member("decoder"), impl->added_content_set);

  // tokenizer_config.json: special tokens, the chat template and the few switches tokenizers.js reads.
  const JsonNode config(config_json, config_file, "");
  config.expect_object();
  impl->remove_space = config.bool_or("remove_space", false);
  impl->clean_up_tokenization_spaces = config.bool_or("clean_up_tokenization_spaces", true);
  impl->lowercase_and_remove_accents = config.bool_or("do_lowercase_and_remove_accent", false);
  if (const auto node = config.find("add_bos_token")) impl->add_bos = node->as_bool();
  if (const auto node = config.find("add_eos_token")) impl->add_eos = node->as_bool();
  if (const auto extra = config.find("additional_special_tokens")) {
    for (std::size_t i = 0; i < extra->size(); ++i) {
      const auto item = extra->at(i);
      impl->special_tokens.insert(item.value().is_object() ? item.at("content").as_string() : item.as_string());
    }
  }
  std::optional<JsonNode> special_map;
  if (special_map_json) {
    special_map.emplace(*special_map_json, special_map_file, "");
    special_map->expect_object();
  }
  auto special = [&](const char* key) {
    auto value = special_token_text(config, key);
    if (!value && special_map) value = special_token_text(*special_map, key);
    return value;
  };
  impl->bos = special("bos_token");
  impl->eos = special("eos_token");
  impl->pad = special("pad_token");
  impl->unk = special("unk_token");
  if (!impl->unk) impl->unk = impl->model->unk_token();
  if (const auto node = config.find("chat_template")) {
    if (node->value().is_string()) {
      impl->chat_template = node->as_string();
    } else if (node->value().is_array()) {
      for (std::size_t i = 0; i < node->size(); ++i) {
        const auto entry = node->at(i);
        if (entry.at("name").as_string() == "default") impl->chat_template = entry.at("template").as_string();
      }
    } else {
      node->fail_expected("a template string or a list of {\"name\", \"template\"} objects");
    }
  }
  return impl;
}

}  // namespace

// ---- loading ----------------------------------------------------------------------------------

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_directory(const fs::path& dir) {
  const fs::path tokenizer_path = dir / "tokenizer.json";
  const auto tokenizer_text = read_file(tokenizer_path);
  if (!tokenizer_text)
    throw_file_error(tokenizer_path.string(), "no tokenizer.json here",
                     "pass the folder of a Hugging Face model or tokenizer, which holds tokenizer.json");
  const fs::path config_path = dir / "tokenizer_config.json";
  const fs::path special_path = dir / "special_tokens_map.json";
  const auto config_text = read_file(config_path);
  const auto special_text = read_file(special_path);

  const Json root = parse_json(*tokenizer_text, {tokenizer_path.string()});
  const Json config = config_text ? parse_json(*config_text, {config_path.string()}) : Json::object();
  std::optional<Json> special;
  if (special_text) special = parse_json(*special_text, {special_path.string()});
  auto impl = load(root, tokenizer_path.string(), config, config_path.string(), special ? &*special : nullptr,
                   special_path.string());
  if (!impl->chat_template) {
    if (auto jinja = read_file(dir / "chat_template.jinja")) impl->chat_template = std::move(*jinja);
  }
  return Tokenizer(std::move(impl));
}

Tokenizer Tokenizer::from_json(std::string_view tokenizer_json, std::string origin, std::string_view tokenizer_config_json) {
  const Json root = parse_json(tokenizer_json, {origin});
  const std::string config_file = origin + " (tokenizer_config.json)";
  const Json config = tokenizer_config_json.empty() ? Json::object() : parse_json(tokenizer_config_json, {config_file});
  return Tokenizer(load(root, std::move(origin), config, config_file, nullptr, {}));
}

// ---- encoding ---------------------------------------------------------------------------------

void Tokenizer::Impl::split_on_added(const AddedTokenSplitter& splitter, std::string_view text,
                                     std::vector<std::string>& out) const {
  const std::size_t first = out.size();
  splitter.split(text, out);
  // lstrip / rstrip trim the neighbouring pieces (JavaScript whitespace), in order, so a trim
  // is seen by the piece's own turn.
  for (std::size_t i = first; i < out.size(); ++i) {
    const AddedToken* token = added(out[i]);
    if (!token) continue;
    if (token->lstrip && i > first) out[i - 1] = std::string(js_trim_end(out[i - 1]));
    if (token->rstrip && i + 1 < out.size()) out[i + 1] = std::string(js_trim_start(out[i + 1]));
  }
}

void Tokenizer::Impl::encode_into(std::string_view text, std::vector<int64_t>& ids) const {
  std::vector<std::string> sections;
  split_on_added(*unnormalized_splitter, text, sections);
  std::vector<std::string> subsections, pieces;
  for (std::size_t section_index = 0; section_index < sections.size(); ++section_index) {
    std::string& section = sections[section_index];
    if (section.empty()) continue;
    if (const AddedToken* token = added(section)) {
      ids.push_back(token->id);
      continue;
    }
    std::string processed = std::move(section);
    if (remove_space) processed = collapse_whitespace(processed);
    if (lowercase_and_remove_accents) processed = remove_marks(to_lower_unicode(processed));
    if (normalizer) processed = normalizer->normalize(std::move(processed));
    if (processed.empty()) continue;
    subsections.clear();
    if (normalized_splitter) split_on_added(*normalized_splitter, processed, subsections);
    else subsections.push_back(std::move(processed));
    for (const auto& subsection : subsections) {
      if (subsection.empty()) continue;
      if (const AddedToken* token = added(subsection)) {
        ids.push_back(token->id);
        continue;
      }
      pieces.clear();
      if (pre_tokenizer) pre_tokenizer->split(subsection, static_cast<int>(section_index), pieces);
      else pieces.push_back(subsection);
      model->encode(pieces, ids);
    }
  }
}

std::vector<int64_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::string repaired;
  if (!is_valid_utf8(text)) {
    repaired = decode_utf8_lossy(text);
    text = repaired;
  }
  std::vector<int64_t> ids;
  ids.reserve(text.size() / 3 + 4);
  impl_->encode_into(text, ids);
  if (impl_->post_processor) impl_->post_processor->process(ids, add_special_tokens);
  return ids;
}

std::vector<std::string> Tokenizer::tokenize(std::string_view text, bool add_special_tokens) const {
  std::vector<std::string> tokens;
  for (const int64_t id : encode(text, add_special_tokens)) tokens.push_back(id_to_token(id).value_or(""));
  return tokens;
}

BatchEncoding Tokenizer::encode_batch(std::span<const std::string> texts, const BatchEncodeOptions& options) const {
  BatchEncoding batch;
  std::size_t longest = 0;
  for (const auto& text : texts) {
    auto ids = encode(text, options.add_special_tokens);
    if (options.max_length && ids.size() > *options.max_length) {
      const auto cut = static_cast<std::ptrdiff_t>(ids.size() - *options.max_length);
      if (options.truncation_side == TokenizerSide::right) ids.erase(ids.end() - cut, ids.end());
      else ids.erase(ids.begin(), ids.begin() + cut);
    }
    longest = std::max(longest, ids.size());
    batch.attention_mask.emplace_back(ids.size(), 1);
    batch.input_ids.push_back(std::move(ids));
  }
  if (!options.pad) return batch;
  const std::size_t target = std::max(longest, options.pad_to_length.value_or(0));
  const auto pad_id = options.pad_id ? options.pad_id : pad_token_id();
  if (!pad_id)
    throw DiagnosticError(make_error(fmt::format("cannot pad: {} has no pad token", impl_->file),
                                     "pass BatchEncodeOptions::pad_id, e.g. the EOS token's id"));
  for (std::size_t i = 0; i < batch.input_ids.size(); ++i) {
    auto& ids = batch.input_ids[i];
    auto& mask = batch.attention_mask[i];
    const std::size_t missing = target - ids.size();
    if (options.padding_side == TokenizerSide::right) {
      ids.insert(ids.end(), missing, *pad_id);
      mask.insert(mask.end(), missing, 0);
    } else {
      ids.insert(ids.begin(), missing, *pad_id);
      mask.insert(mask.begin(), missing, 0);
    }
  }
  return batch;
}

// ---- decoding ---------------------------------------------------------------------------------

std::string Tokenizer::decode(std::span<const int64_t> ids, bool skip_special_tokens) const {
  const Impl& t = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  const auto& unk = t.model->unk_token();
  for (const int64_t id : ids) {
    const bool known = id >= 0 && static_cast<std::size_t>(id) < t.tokens_by_id.size() && t.has_token[id];
    if (!known && !unk) continue;
    const std::string& token = known ? t.tokens_by_id[id] : *unk;
    if (skip_special_tokens && t.special_tokens.count(token)) continue;
    tokens.push_back(token);
  }
  std::string text;
  if (t.decoder) {
    t.decoder->decode_chain(tokens);
    for (const auto& piece : tokens) text += piece;
    const std::string& suffix = t.model->end_of_word_suffix();
    if (!suffix.empty()) {
      std::string replaced;
      std::size_t copied = 0;
      for (auto at = text.find(suffix); at != std::string::npos; at = text.find(suffix, copied)) {
        replaced.append(text, copied, at - copied);
        replaced += ' ';
        copied = at + suffix.size();
      }
      replaced.append(text, copied);
      text = std::move(replaced);
      if (skip_special_tokens) text = std::string(js_trim_end(js_trim_start(text)));
    }
  } else {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (i) text += ' ';
      text += tokens[i];
    }
  }
  if (t.clean_up_tokenization_spaces) text = clean_up_tokenization(std::move(text));
  return text;
}

// ---- vocabulary and special tokens ------------------------------------------------------------

std::optional<int64_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const auto it = impl_->added_contents.find(token); it != impl_->added_contents.end()) return it->second;
  if (const auto it = impl_->model->vocab().find(token); it != impl_->model->vocab().end()) return it->second;
  return std::nullopt;
}

std::optional<std::string> Tokenizer::id_to_token(int64_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= impl_->tokens_by_id.size() || !impl_->has_token[id]) return std::nullopt;
  return impl_->tokens_by_id[id];
}

int64_t Tokenizer::vocab_size() const { return static_cast<int64_t>(impl_->tokens_by_id.size()); }

const std::optional<std::string>& Tokenizer::bos_token() const { return impl_->bos; }
const std::optional<std::string>& Tokenizer::eos_token() const { return impl_->eos; }
const std::optional<std::string>& Tokenizer::pad_token() const { return impl_->pad; }
const std::optional<std::string>& Tokenizer::unk_token() const { return impl_->unk; }
std::optional<int64_t> Tokenizer::bos_token_id() const { return impl_->bos ? token_to_id(*impl_->bos) : std::nullopt; }
std::optional<int64_t> Tokenizer::eos_token_id() const { return impl_->eos ? token_to_id(*impl_->eos) : std::nullopt; }
std::optional<int64_t> Tokenizer::pad_token_id() const { return impl_->pad ? token_to_id(*impl_->pad) : std::nullopt; }
std::optional<int64_t> Tokenizer::unk_token_id() const { return impl_->unk ? token_to_id(*impl_->unk) : std::nullopt; }
std::optional<bool> Tokenizer::add_bos_token() const { return impl_->add_bos; }
std::optional<bool> Tokenizer::add_eos_token() const { return impl_->add_eos; }
bool Tokenizer::is_special_id(int64_t id) const { return impl_->special_ids.count(id) > 0; }
const std::optional<std::string>& Tokenizer::chat_template() const { return impl_->chat_template; }
const fs::path& Tokenizer::origin() const { return impl_->origin; }

}  // namespace alignkit
