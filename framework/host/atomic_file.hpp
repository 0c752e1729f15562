// Writing a file so that a crash leaves either the old file or the new one, never a torn one.
#pragma once

#include <filesystem>
#include <string_view>

namespace alignkit {

// Writes `content` to a temporary file beside `path`, fsyncs it, renames it over `path`, and
// fsyncs the folder. Throws DiagnosticError naming the path on failure.
void write_file_atomically(const std::filesystem::path& path, std::string_view content);

}  // namespace alignkit
