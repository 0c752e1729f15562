// libFuzzer target for JSONL data files: the input is the file (plain, or gzip when it starts with
// gzip's magic), read line by line with JsonlReader and each row parsed with parse_json as the
// dataset plugins do. A row either parses or is refused with a DiagnosticError located at that
// row's line; the reader itself refuses only a corrupt gzip stream.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <alignkit/diagnostic.hpp>
#include <alignkit/json_file.hpp>
#include <alignkit/jsonl_reader.hpp>

namespace {

// One scratch file per fuzzing process, rewritten for every input.
const std::filesystem::path& scratch() {
  static const auto path = std::filesystem::temp_directory_path() / ("alignkit-jsonl-fuzz-" + std::to_string(getpid()) + ".jsonl");
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  {
    std::ofstream out(scratch(), std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    alignkit::JsonlReader reader(scratch());
    std::string line;
    while (reader.next(line)) {
      try {
        const auto row = alignkit::parse_json(line, {scratch().string(), reader.line_number()});
        (void)row.dump();
      } catch (const alignkit::DiagnosticError& e) {
        if (e.diagnostics().front().where.line != reader.line_number()) std::abort();  // mislocated
      }
    }
  } catch (const alignkit::DiagnosticError&) {  // a corrupt gzip stream
  }
  return 0;
}
