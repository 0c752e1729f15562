// Line-by-line reading of JSONL data files, plain or gzip-compressed (detected from the file's
// first bytes, not its name), with the line number each record came from.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

namespace alignkit {

class JsonlReader {
 public:
  // Throws DiagnosticError naming the file when it cannot be opened.
  explicit JsonlReader(const std::filesystem::path& file);
  ~JsonlReader();
  JsonlReader(const JsonlReader&) = delete;
  JsonlReader& operator=(const JsonlReader&) = delete;

  // The next line that is not blank, without its newline; false at the end of the file. Throws
  // DiagnosticError for a corrupt gzip stream, naming the file and line.
  bool next(std::string& line);
  int line_number() const { return line_number_; }
  const std::filesystem::path& file() const { return file_; }

 private:
  std::filesystem::path file_;
  void* stream_ = nullptr;  // gzFile: zlib reads plain files through the same calls
  int line_number_ = 0;
};

}  // namespace alignkit
