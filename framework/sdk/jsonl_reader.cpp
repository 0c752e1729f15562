#include <alignkit/jsonl_reader.hpp>

#include <fmt/format.h>
#include <zlib.h>

#include <alignkit/diagnostic.hpp>

namespace alignkit {

JsonlReader::JsonlReader(const std::filesystem::path& file) : file_(file) {
  if (!std::filesystem::is_regular_file(file)) throw_file_error(file.string(), "does not exist or is not a file");
  stream_ = gzopen(file.c_str(), "rb");
  if (!stream_) throw_file_error(file.string(), "cannot be opened for reading");
  gzbuffer(static_cast<gzFile>(stream_), 1 << 17);
}

JsonlReader::~JsonlReader() {
  if (stream_) gzclose(static_cast<gzFile>(stream_));
}

bool JsonlReader::next(std::string& line) {
  auto* gz = static_cast<gzFile>(stream_);
  char buffer[1 << 14];
  while (true) {
    line.clear();
    bool got = false;
    while (gzgets(gz, buffer, sizeof buffer)) {
      got = true;
      line += buffer;
      if (!line.empty() && line.back() == '\n') break;
    }
    int error = Z_OK;
    const char* message = gzerror(gz, &error);
    if (error != Z_OK && error != Z_STREAM_END)
      throw DiagnosticError(Diagnostic{Severity::error, SourceLocation{file_.string(), line_number_ + 1, 0},
                                       fmt::format("cannot be decompressed: {}", message)});
    if (!got) return false;
    ++line_number_;
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    if (line.find_first_not_of(" \t") != std::string::npos) return true;
  }
}

}  // namespace alignkit
