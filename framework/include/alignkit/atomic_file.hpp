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

}  // namespace alignkit
