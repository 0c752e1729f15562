// Writing a file so that a crash leaves either the old file or the new one, never a torn one:
// write a temporary file beside the target, fsync it, rename it over the target, fsync the folder.
#pragma once

#include <filesystem>
#include <string_view>

namespace alignkit {

class AtomicFile {
 public:
  // Creates the temporary file. Throws DiagnosticError naming the path.
  explicit AtomicFile(std::filesystem::path path);
  // Removes the temporary file unless commit() succeeded.
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, std::size_t size);
  void write(std::string_view text) { write(text.data(), text.size()); }
  // Flushes and renames into place. Throws DiagnosticError naming the path.
  void commit();

 private:
  std::filesystem::path path_, temp_;
  int fd_ = -1;
  bool committed_ = false;
};

// AtomicFile for a whole string.
void write_file_atomically(const std::filesystem::path& path, std::string_view content);

// A folder that appears whole or not at all (a training checkpoint): its files are written into a
// temporary sibling, `.NAME.tmp.PID`, which commit() fsyncs and renames into place. A crash
// leaves at most that temporary folder, which readers ignore. The target must not exist yet.
class AtomicDirectory {
 public:
  // Creates the temporary folder (replacing a stale one of this process id). Throws DiagnosticError.
  explicit AtomicDirectory(std::filesystem::path path);
  // Removes the temporary folder unless commit() succeeded.
  ~AtomicDirectory();
  AtomicDirectory(const AtomicDirectory&) = delete;
  AtomicDirectory& operator=(const AtomicDirectory&) = delete;

  // Where the files go until commit(); write them with AtomicFile so each is on disk.
  const std::filesystem::path& staging() const { return temp_; }
  // fsyncs the folder, renames it to the target and fsyncs the parent. Throws DiagnosticError.
  void commit();

 private:
  std::filesystem::path path_, temp_;
  bool committed_ = false;
};

// fsync of a folder, so renames and new entries in it are durable; errors are ignored (some file
// systems refuse fsync on folders).
void sync_directory(const std::filesystem::path& dir);

}  // namespace alignkit
