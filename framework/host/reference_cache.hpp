// The precomputed reference's log-probs on disk, keyed by what they were computed from, so a
// cache made for another model, other data or another tokenisation is refused by name instead of
// silently training against the wrong numbers (TRL's precompute_ref_log_probs keeps no such key).
#pragma once

#include <map>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace alignkit {

// xxh3-64 over bytes, strings and whole files, as 16 hex digits.
class ContentHash {
 public:
  ContentHash();
  ~ContentHash();
  ContentHash(const ContentHash&) = delete;
  ContentHash& operator=(const ContentHash&) = delete;

  ContentHash& add(const void* data, std::size_t size);
  // A string with its length first, so ("ab", "c") and ("a", "bc") differ.
  ContentHash& add(const std::string& text);
  ContentHash& add(std::int64_t value) { return add(&value, sizeof value); }
  // The file's bytes (a missing file adds its absence). Throws DiagnosticError if it cannot be read.
  ContentHash& add_file(const std::filesystem::path& file);
  std::string hex() const;

 private:
  void* state_;
};

// One part of the key: a name, its hash, and what it was computed from (shown in messages).
struct CacheKeyPart {
  std::string name;   // "model", "data", "tokenization", "scoring", "examples"
  std::string hash;
  std::string about;
};

// Reference log-probs of one split, per scored completion ("completion" (the chosen one of a
// pair), "rejected", "mismatched"; offline_scoring.hpp), one value per example.
using ReferenceLogps = std::map<std::string, std::vector<double>>;

struct ReferenceCache {
  ReferenceLogps train, eval;
};

// Reads `file` if it exists: nullopt when it does not, the values when every key part equals
// `key`'s. Throws DiagnosticError naming the file and each part that differs (both hashes and
// what each was made from), or a file that is not a reference cache.
std::optional<ReferenceCache> read_reference_cache(const std::filesystem::path& file,
                                                   const std::vector<CacheKeyPart>& key);

// Writes the cache atomically, with the key in the safetensors metadata.
void write_reference_cache(const std::filesystem::path& file, const std::vector<CacheKeyPart>& key,
                           const ReferenceCache& cache);

}  // namespace alignkit
