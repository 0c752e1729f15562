// The BPE model of tokenizer.json: vocabulary, merges by rank, byte fallback (`<0xNN>`), unknown
// token fusing and `ignore_merges`, producing the ids tokenizers.js's BPE produces.
//
// Merging works on ids: every merge names two vocabulary tokens and yields a third (checked at
// load), so a word starts as the ids of its code points and repeatedly merges the adjacent pair of
// lowest rank, leftmost first, through a heap. Words of byte-level tokenizers repeat a lot; their
// ids are cached.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "json_reader.hpp"

namespace alignkit::tokenizer {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenIds = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  // Reads `model` (type BPE). Refuses merges that name tokens outside the vocabulary.
  explicit BpeModel(const JsonNode& model);
  ~BpeModel();

  // Tokens outside the model's vocabulary that tokenizers.js still treats as known: added tokens
  // (their content maps to their id). Call once, before encoding.
  void set_added_tokens(const TokenIds& added_ids);

  // Encodes the pre-tokenized pieces of one section, appending ids (unknown pieces fuse as
  // tokenizers.js's fuse_unk does).
  void encode(const std::vector<std::string>& pieces, std::vector<int64_t>& ids) const;

  const TokenIds& vocab() const { return vocab_; }
  const std::vector<std::string>& tokens() const { return tokens_; }  // by id; may have holes
  const std::optional<std::string>& unk_token() const { return unk_token_; }
  std::optional<int32_t> unk_id() const { return unk_id_; }
  const std::string& end_of_word_suffix() const { return end_of_word_suffix_; }

 private:
  struct Merge {
    uint32_t rank;
    int32_t merged_id;
  };
  class MergeTable;

  void encode_cached(std::string_view word, std::vector<int64_t>& ids) const;
  void encode_word(std::string_view word, std::vector<int64_t>& ids) const;
  int32_t lookup_symbol(std::string_view symbol) const;  // model id, or -1
  int64_t final_id(int32_t model_id) const;

  TokenIds vocab_;
  std::vector<std::string> tokens_;
  std::unique_ptr<MergeTable> merges_;
  std::optional<std::string> unk_token_;
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  bool split_at_metaspace_ = false;  // see the constructor
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  std::vector<int32_t> byte_fallback_ids_;    // 256 entries: the id of `<0xNN>` or -1
  std::vector<int32_t> bmp_symbol_ids_;       // the id of each single BMP code point, or -1
  const TokenIds* added_ids_ = nullptr;
  std::unordered_map<int32_t, int64_t> remapped_ids_;  // model ids whose text is an added token

  // The word cache: word -> ids. Guarded so that a const model can be shared between threads.
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int64_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace alignkit::tokenizer
