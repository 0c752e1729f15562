#include "bpe_model.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "utf8.hpp"

namespace alignkit::tokenizer {

// Open addressing from a pair of ids to its merge; the hot lookup of encoding.
class BpeModel::MergeTable {
 public:
  explicit MergeTable(std::size_t count) {
    std::size_t capacity = 16;
    while (capacity < count * 2) capacity *= 2;
    keys_.assign(capacity, kEmpty);
    values_.resize(capacity);
    mask_ = capacity - 1;
  }

  // A later merge of the same pair replaces an earlier one, as in tokenizers.js's Map.
  void insert(int32_t left, int32_t right, Merge merge) {
    const uint64_t key = pack(left, right);
    for (std::size_t slot = hash(key) & mask_;; slot = (slot + 1) & mask_) {
      if (keys_[slot] == kEmpty || keys_[slot] == key) {
        keys_[slot] = key;
        values_[slot] = merge;
        return;
      }
    }
  }

  const Merge* find(int32_t left, int32_t right) const {
    const uint64_t key = pack(left, right);
    for (std::size_t slot = hash(key) & mask_;; slot = (slot + 1) & mask_) {
      if (keys_[slot] == key) return &values_[slot];
      if (keys_[slot] == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t pack(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  static std::size_t hash(uint64_t key) {
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return static_cast<std::size_t>(key);
  }
  std::vector<uint64_t> keys_;
  std::vector<Merge> values_;
  std::size_t mask_ = 0;
};

namespace {

constexpr std::size_t kMaxCachedWordBytes = 256;
constexpr std::size_t kMaxCacheEntries = 200'000;
constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // ▁, SentencePiece's space

// One merge's two halves, read from "a b" or ["a", "b"].
std::pair<std::string, std::string> merge_halves(const JsonNode& merge) {
  if (merge.value().is_string()) {
    const std::string text = merge.as_string();
    const auto space = text.find(' ');
    if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos)
      merge.fail("expected a merge of two tokens separated by one space, e.g. \"Ġ t\"");
    return {text.substr(0, space), text.substr(space + 1)};
  }
  if (merge.value().is_array() && merge.size() == 2)
    return {merge.at(std::size_t{0}).as_string(), merge.at(std::size_t{1}).as_string()};
  merge.fail_expected("a merge: \"left right\" or [\"left\", \"right\"]");
}

}  // namespace

BpeModel::BpeModel(const JsonNode& model) {
  const auto vocab = model.at("vocab");
  vocab.expect_object();
  vocab_.reserve(vocab.value().size());
  int32_t max_id = -1;
  for (const auto& [token, id_value] : vocab.value().items()) {
    if (!id_value.is_number_integer() || id_value.get<int64_t>() < 0 || id_value.get<int64_t>() > INT32_MAX)
      JsonNode(id_value, vocab.file(), fmt::format("{}[{}]", vocab.path(), nlohmann::json(token).dump()))
          .fail_expected("a token id (an integer from 0)");
    const auto id = static_cast<int32_t>(id_value.get<int64_t>());
    vocab_[token] = id;
    max_id = std::max(max_id, id);
  }
  tokens_.resize(static_cast<std::size_t>(max_id + 1));
  for (const auto& [token, id] : vocab_) tokens_[id] = token;

  const auto merges = model.at("merges");
  merges_ = std::make_unique<MergeTable>(merges.size());
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const auto merge = merges.at(rank);
    const auto [left, right] = merge_halves(merge);
    auto id_of = [&](const std::string& token, const char* what) {
      const auto it = vocab_.find(token);
      if (it == vocab_.end())
        merge.fail(fmt::format("the merge's {} `{}` is not in `{}`", what, token, vocab.path()),
                   "every merge must join two vocabulary tokens into a third");
      return it->second;
    };
    const int32_t left_id = id_of(left, "left token");
    const int32_t right_id = id_of(right, "right token");
    const int32_t merged_id = id_of(left + right, "result");
    merges_->insert(left_id, right_id, Merge{static_cast<uint32_t>(rank), merged_id});
  }

  unk_token_ = model.optional_string("unk_token");
  if (unk_token_) {
    const auto it = vocab_.find(*unk_token_);
    if (it != vocab_.end()) unk_id_ = it->second;
  }
  fuse_unk_ = model.bool_or("fuse_unk", false);
  byte_fallback_ = model.bool_or("byte_fallback", false);
  ignore_merges_ = model.bool_or("ignore_merges", false);
  end_of_word_suffix_ = model.string_or("end_of_word_suffix", "");

  byte_fallback_ids_.assign(256, -1);
  for (int b = 0; b < 256; ++b) {
    const auto it = vocab_.find(fmt::format("<0x{:02X}>", b));
    if (it != vocab_.end()) byte_fallback_ids_[b] = it->second;
  }
  bmp_symbol_ids_.assign(0x10000, -1);
  for (const auto& [token, id] : vocab_) {
    if (token.empty() || !is_valid_utf8(token)) continue;
    const auto cp = decode_code_point(token, 0);
    if (static_cast<std::size_t>(cp.length) == token.size() && cp.value < 0x10000) bmp_symbol_ids_[cp.value] = id;
  }
  // SentencePiece-style vocabularies (Llama 2) have no token with "▁" after another character;
  // then a long text can be cut before such a "▁" without changing the result.
  split_at_metaspace_ = end_of_word_suffix_.empty() && vocab_.count(std::string(kMetaspace)) > 0;
  for (const auto& [token, id] : vocab_) {
    if (!split_at_metaspace_) break;
    for (std::size_t at = token.find(kMetaspace, 1); at != std::string::npos; at = token.find(kMetaspace, at + 1)) {
      if (at < kMetaspace.size() || token.compare(at - kMetaspace.size(), kMetaspace.size(), kMetaspace) != 0) {
        split_at_metaspace_ = false;
        break;
      }
    }
  }
}

BpeModel::~BpeModel() = default;

void BpeModel::set_added_tokens(const TokenIds& added_ids) {
  added_ids_ = &added_ids;
  for (const auto& [content, id] : added_ids) {
    const auto it = vocab_.find(content);
    if (it != vocab_.end() && it->second != id) remapped_ids_[it->second] = id;
  }
}

int32_t BpeModel::lookup_symbol(std::string_view symbol) const {
  const auto cp = decode_code_point(symbol, 0);
  if (static_cast<std::size_t>(cp.length) == symbol.size() && cp.value < 0x10000) return bmp_symbol_ids_[cp.value];
  const auto it = vocab_.find(symbol);
  return it == vocab_.end() ? -1 : it->second;
}

int64_t BpeModel::final_id(int32_t model_id) const {
  if (remapped_ids_.empty()) return model_id;
  const auto it = remapped_ids_.find(model_id);
  return it == remapped_ids_.end() ? model_id : it->second;
}

void BpeModel::encode(const std::vector<std::string>& pieces, std::vector<int64_t>& ids) const {
  const std::size_t first = ids.size();
  for (const auto& piece : pieces) {
    if (piece.empty()) continue;
    if (ignore_merges_) {
      // A piece that is itself a token is emitted whole (Llama 3).
      if (added_ids_) {
        const auto added = added_ids_->find(piece);
        if (added != added_ids_->end()) {
          ids.push_back(added->second);
          continue;
        }
      }
      const auto it = vocab_.find(piece);
      if (it != vocab_.end()) {
        ids.push_back(final_id(it->second));
        continue;
      }
    }
    if (!split_at_metaspace_) {
      encode_cached(piece, ids);
      continue;
    }
    // Cut before each "▁" that follows another character: no merge can cross such a cut (checked
    // at load), so the parts encode independently, and repeat (and cache) like words.
    std::size_t start = 0;
    for (std::size_t at = piece.find(kMetaspace, 1); at != std::string::npos; at = piece.find(kMetaspace, at + 1)) {
      if (at >= kMetaspace.size() && piece.compare(at - kMetaspace.size(), kMetaspace.size(), kMetaspace) == 0) continue;
      encode_cached(std::string_view(piece).substr(start, at - start), ids);
      start = at;
    }
    encode_cached(std::string_view(piece).substr(start), ids);
  }
  if (fuse_unk_ && unk_token_) {
    // Consecutive unknown tokens become one (tokenizers.js keeps the first of a run).
    const int64_t unk = [&]() -> int64_t {
      if (added_ids_) {
        const auto added = added_ids_->find(*unk_token_);
        if (added != added_ids_->end()) return added->second;
      }
      return unk_id_ ? final_id(*unk_id_) : -1;
    }();
    if (unk < 0) return;
    std::size_t out = first;
    for (std::size_t i = first; i < ids.size(); ++i) {
      if (ids[i] == unk && out > first && ids[out - 1] == unk) continue;
      ids[out++] = ids[i];
    }
    ids.resize(out);
  }
}

void BpeModel::encode_cached(std::string_view word, std::vector<int64_t>& ids) const {
  if (word.size() >= kMaxCachedWordBytes) return encode_word(word, ids);
  {
    std::lock_guard lock(cache_mutex_);
    const auto it = cache_.find(word);
    if (it != cache_.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const std::size_t start = ids.size();
  encode_word(word, ids);
  std::vector<int64_t> word_ids(ids.begin() + static_cast<std::ptrdiff_t>(start), ids.end());
  std::lock_guard lock(cache_mutex_);
  if (cache_.size() >= kMaxCacheEntries) cache_.clear();
  cache_.emplace(std::string(word), std::move(word_ids));
}

void BpeModel::encode_word(std::string_view word, std::vector<int64_t>& ids) const {
  struct Symbol {
    int32_t id;       // model id; -1 when the code point is not in the vocabulary
    int32_t prev, next;
    uint32_t begin, length;  // the symbol's bytes in `word` (for byte fallback)
  };
  struct Candidate {
    uint32_t rank;
    int32_t pos, left, right, merged;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Candidate> heap;
  thread_local std::string with_suffix;
  symbols.clear();
  heap.clear();

  for (std::size_t pos = 0; pos < word.size();) {
    const int length = utf8_sequence_length(static_cast<unsigned char>(word[pos]));
    const auto n = static_cast<int32_t>(symbols.size());
    symbols.push_back({-1, n - 1, n + 1, static_cast<uint32_t>(pos), static_cast<uint32_t>(length)});
    pos += length;
  }
  symbols.back().next = -1;
  for (auto& s : symbols) s.id = lookup_symbol(word.substr(s.begin, s.length));
  if (!end_of_word_suffix_.empty()) {
    auto& last = symbols.back();
    with_suffix.assign(word.substr(last.begin, last.length));
    with_suffix += end_of_word_suffix_;
    const auto it = vocab_.find(with_suffix);
    last.id = it == vocab_.end() ? -1 : it->second;
  }

  auto consider = [&](int32_t pos) {
    if (pos < 0) return;
    const Symbol& left = symbols[pos];
    if (left.next < 0 || left.id < 0) return;
    const Symbol& right = symbols[left.next];
    if (right.id < 0) return;
    if (const Merge* m = merges_->find(left.id, right.id)) {
      heap.push_back({m->rank, pos, left.id, right.id, m->merged_id});
      std::push_heap(heap.begin(), heap.end(), std::greater<>());
    }
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) consider(i);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>());
    const Candidate c = heap.back();
    heap.pop_back();
    Symbol& left = symbols[c.pos];
    if (left.id != c.left || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    if (right.id != c.right) continue;
    left.id = c.merged;
    left.length += right.length;
    right.id = -2;  // gone
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = c.pos;
    consider(left.prev);
    consider(c.pos);
  }

  for (int32_t i = 0; i >= 0; i = symbols[i].next) {
    const Symbol& s = symbols[i];
    if (s.id >= 0) {
      ids.push_back(final_id(s.id));
      continue;
    }
    std::string text(word.substr(s.begin, s.length));
    if (s.next < 0 && !end_of_word_suffix_.empty()) text += end_of_word_suffix_;
    if (added_ids_) {
      const auto added = added_ids_->find(text);
      if (added != added_ids_->end()) {
        ids.push_back(added->second);
        continue;
      }
    }
    if (byte_fallback_) {
      bool all = true;
      for (unsigned char b : text) all = all && byte_fallback_ids_[b] >= 0;
      if (all) {
        for (unsigned char b : text) ids.push_back(final_id(byte_fallback_ids_[b]));
        continue;
      }
    }
    if (unk_token_) {
      if (added_ids_) {
        const auto added = added_ids_->find(*unk_token_);
        if (added != added_ids_->end()) {
          ids.push_back(added->second);
          continue;
        }
      }
      if (unk_id_) ids.push_back(final_id(*unk_id_));
    }
  }
}

}  // namespace alignkit::tokenizer
