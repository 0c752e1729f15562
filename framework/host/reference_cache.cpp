#include "reference_cache.hpp"

#include <fstream>

#include <fmt/format.h>
#include <xxhash.h>

#include <alignkit/diagnostic.hpp>
#include <alignkit/safetensors.hpp>

namespace alignkit {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFormatKey = "alignkit.reference_cache";
constexpr const char* kFormatVersion = "1";

// The file's tensors are "<split>.<n>", n the completion's place in this list (format 1).
const std::vector<std::string> kCompletionNames = {"completion", "rejected", "mismatched"};

std::string slot_name(const char* split, std::size_t slot) { return fmt::format("{}.{}", split, slot); }

}  // namespace

ContentHash::ContentHash() : state_(XXH3_createState()) { XXH3_64bits_reset(static_cast<XXH3_state_t*>(state_)); }

ContentHash::~ContentHash() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }

ContentHash& ContentHash::add(const void* data, std::size_t size) {
  XXH3_64bits_update(static_cast<XXH3_state_t*>(state_), data, size);
  return *this;
}

ContentHash& ContentHash::add(const std::string& text) {
  add(static_cast<std::int64_t>(text.size()));
  return add(text.data(), text.size());
}

ContentHash& ContentHash::add_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    add(std::string("<absent>"));
    return *this;
  }
  add(file.filename().string());
  std::vector<char> buffer(1 << 22);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    add(buffer.data(), static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) throw_file_error(file.string(), "cannot be read to compute the reference cache's key");
  return *this;
}

std::string ContentHash::hex() const {
  return fmt::format("{:016x}", XXH3_64bits_digest(static_cast<const XXH3_state_t*>(state_)));
}

std::optional<ReferenceCache> read_reference_cache(const fs::path& file, const std::vector<CacheKeyPart>& key) {
  if (!fs::exists(file)) return std::nullopt;
  const auto data = safetensors::File::open(file);
  const auto& metadata = data.header().metadata;
  auto format = metadata.find(kFormatKey);
  if (format == metadata.end() || format->second != kFormatVersion)
    throw DiagnosticError(make_error(fmt::format("{}: not an alignkit reference cache (format {})", file.string(),
                                                 kFormatVersion),
                                     "point [reference] cache at another file, or delete this one"));
  Diagnostic mismatch{Severity::error, SourceLocation{file.string(), 0, 0}, ""};
  std::vector<std::string> differing;
  for (const auto& part : key) {
    auto hash = metadata.find("key." + part.name);
    auto about = metadata.find("about." + part.name);
    const std::string theirs = hash == metadata.end() ? "(none)" : hash->second;
    if (theirs == part.hash) continue;
    differing.push_back(part.name);
    mismatch.notes.push_back(fmt::format("{}: the cache has {} ({}), this run has {} ({})", part.name, theirs,
                                         about == metadata.end() ? "unknown" : about->second, part.hash, part.about));
  }
  if (!differing.empty()) {
    mismatch.message = fmt::format("the precomputed reference log-probs were made for another {}", fmt::join(differing, ", "));
    mismatch.help = "delete the file to recompute it, or point [reference] cache at a cache made for this run";
    throw DiagnosticError(std::move(mismatch));
  }
  ReferenceCache cache;
  for (auto [split, values] : {std::pair{"train", &cache.train}, std::pair{"eval", &cache.eval}})
    for (std::size_t slot = 0; slot < kCompletionNames.size(); ++slot) {
      const auto name = slot_name(split, slot);
      if (!data.find(name)) continue;
      const auto t = data.tensor(name).to(torch::kFloat64).contiguous();
      (*values)[kCompletionNames[slot]].assign(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
    }
  return cache;
}

void write_reference_cache(const fs::path& file, const std::vector<CacheKeyPart>& key, const ReferenceCache& cache) {
  std::map<std::string, std::string> metadata{{kFormatKey, kFormatVersion}};
  for (const auto& part : key) {
    metadata["key." + part.name] = part.hash;
    metadata["about." + part.name] = part.about;
  }
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (auto [split, values] : {std::pair{"train", &cache.train}, std::pair{"eval", &cache.eval}})
    for (std::size_t slot = 0; slot < kCompletionNames.size(); ++slot)
      if (auto it = values->find(kCompletionNames[slot]); it != values->end() && !it->second.empty())
        tensors.emplace_back(slot_name(split, slot), torch::tensor(it->second, torch::kFloat64));
  if (!file.parent_path().empty()) fs::create_directories(file.parent_path());
  safetensors::save(file, tensors, metadata);
}

}  // namespace alignkit
