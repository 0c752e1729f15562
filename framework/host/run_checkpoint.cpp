#include "run_checkpoint.hpp"

#include <algorithm>
#include <string>

#include <alignkit/atomic_file.hpp>

namespace alignkit {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kPrefix = "checkpoint-";

// "checkpoint-120" -> 120; anything else -> nullopt.
std::optional<std::int64_t> step_of(const std::string& name) {
  if (name.size() <= kPrefix.size() || name.compare(0, kPrefix.size(), kPrefix) != 0) return std::nullopt;
  const auto digits = name.substr(kPrefix.size());
  if (digits.size() > 18 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  return std::stoll(digits);
}

// Renamed to a hidden name first, atomically, then deleted.
void discard(const fs::path& folder) {
  const auto doomed = folder.parent_path() / ("." + folder.filename().string() + ".deleting");
  std::error_code ec;
  fs::remove_all(doomed, ec);
  fs::rename(folder, doomed, ec);
  if (!ec) fs::remove_all(doomed, ec);
}

}  // namespace

std::vector<CheckpointFolder> list_checkpoints(const fs::path& run_dir) {
  std::vector<CheckpointFolder> out;
  std::error_code ec;
  for (fs::directory_iterator it(run_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto step = step_of(it->path().filename().string());
    if (step && fs::is_regular_file(it->path() / "trainer_state.json")) out.push_back({*step, it->path()});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.step < b.step; });
  return out;
}

std::optional<CheckpointFolder> latest_checkpoint(const fs::path& run_dir) {
  auto all = list_checkpoints(run_dir);
  if (all.empty()) return std::nullopt;
  return all.back();
}

void prune_checkpoints(const fs::path& run_dir, std::int64_t keep) {
  if (keep <= 0) return;
  auto all = list_checkpoints(run_dir);
  const auto excess = static_cast<std::int64_t>(all.size()) - keep;
  for (std::int64_t i = 0; i < excess; ++i) discard(all[static_cast<std::size_t>(i)].path);
  sync_directory(run_dir);
}

void remove_checkpoint_leftovers(const fs::path& run_dir) {
  std::error_code ec;
  std::vector<fs::path> leftovers;
  for (fs::directory_iterator it(run_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto name = it->path().filename().string();
    if (name.rfind(".checkpoint-", 0) == 0) leftovers.push_back(it->path());
  }
  for (const auto& path : leftovers) fs::remove_all(path, ec);
}

void remove_checkpoints(const fs::path& run_dir) {
  remove_checkpoint_leftovers(run_dir);
  for (const auto& c : list_checkpoints(run_dir)) discard(c.path);
  sync_directory(run_dir);
}

}  // namespace alignkit
