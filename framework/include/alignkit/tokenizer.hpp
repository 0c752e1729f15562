// A Hugging Face tokenizer, loaded from `tokenizer.json` (+ `tokenizer_config.json`,
// `special_tokens_map.json`), producing exactly the ids tokenizers.js (@huggingface/tokenizers)
// produces: byte-level BPE (GPT-2, Llama 3, Qwen2/3, SmolLM) and SentencePiece-style BPE with byte
// fallback (Llama 2, Mistral, TinyLlama). See docs/tokenizers.md for what is supported.
//
//   auto tokenizer = alignkit::Tokenizer::from_directory("models/Qwen3-0.6B");
//   std::vector<int64_t> ids = tokenizer.encode("Hello world");
//   std::string text = tokenizer.decode(ids);
//
// Malformed files are refused with an alignkit::DiagnosticError naming the file, the JSON path and
// what was expected. Encoding never fails on text: bytes that are not valid UTF-8 are replaced by
// U+FFFD first (what a Rust &str or a JavaScript string would have held).
// Thread safety: a const Tokenizer may be used from several threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace alignkit {

// Which end of a sequence truncation cuts from, or padding is added to.
enum class TokenizerSide { right, left };

struct BatchEncodeOptions {
  bool add_special_tokens = true;
  // Truncate each sequence to at most this many ids (after special tokens are added).
  std::optional<std::size_t> max_length;
  TokenizerSide truncation_side = TokenizerSide::right;
  // Pad every sequence to the longest one in the batch (or to `pad_to_length` when it is longer).
  bool pad = false;
  std::optional<std::size_t> pad_to_length;
  TokenizerSide padding_side = TokenizerSide::right;
  // The id padding uses; the tokenizer's pad token when not given (padding without either throws).
  std::optional<int64_t> pad_id;
};

struct BatchEncoding {
  std::vector<std::vector<int64_t>> input_ids;
  std::vector<std::vector<int64_t>> attention_mask;  // 1 for a real id, 0 for padding
};

class Tokenizer {
 public:
  // Reads DIR/tokenizer.json and, when present, DIR/tokenizer_config.json,
  // DIR/special_tokens_map.json and DIR/chat_template.jinja.
  static Tokenizer from_directory(const std::filesystem::path& dir);
  // `origin` names the file in error messages (and is what origin() returns).
  static Tokenizer from_json(std::string_view tokenizer_json, std::string origin,
                             std::string_view tokenizer_config_json = {});

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Special tokens are those the post-processor adds (e.g. Llama 2's <s>); special-token strings
  // inside `text` are always recognised, as in Hugging Face.
  std::vector<int64_t> encode(std::string_view text, bool add_special_tokens = true) const;
  // The token strings of encode() (e.g. "ĠHello"), for debugging and the CLI.
  std::vector<std::string> tokenize(std::string_view text, bool add_special_tokens = false) const;
  BatchEncoding encode_batch(std::span<const std::string> texts, const BatchEncodeOptions& options = {}) const;

  // Ids outside the vocabulary decode as the unknown token (or nothing when there is none).
  std::string decode(std::span<const int64_t> ids, bool skip_special_tokens = false) const;

  std::optional<int64_t> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(int64_t id) const;
  int64_t vocab_size() const;  // including added tokens: the largest id + 1

  // From tokenizer_config.json (or special_tokens_map.json where the config lacks them).
  const std::optional<std::string>& bos_token() const;
  const std::optional<std::string>& eos_token() const;
  const std::optional<std::string>& pad_token() const;
  const std::optional<std::string>& unk_token() const;
  std::optional<int64_t> bos_token_id() const;
  std::optional<int64_t> eos_token_id() const;
  std::optional<int64_t> pad_token_id() const;
  std::optional<int64_t> unk_token_id() const;
  // What tokenizer_config.json says; informational: the ids come from tokenizer.json's
  // post-processor, as tokenizers.js does (see docs/tokenizers.md, "BOS and EOS").
  std::optional<bool> add_bos_token() const;
  std::optional<bool> add_eos_token() const;
  bool is_special_id(int64_t id) const;

  // The Jinja chat template: tokenizer_config.json's `chat_template` (a string, or the "default"
  // entry of a list of named templates), else chat_template.jinja beside it.
  const std::optional<std::string>& chat_template() const;
  // The tokenizer.json file (or the origin given to from_json).
  const std::filesystem::path& origin() const;

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace alignkit
