#include "atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include <alignkit/diagnostic.hpp>

namespace alignkit {

namespace {

[[noreturn]] void fail(const std::filesystem::path& path, const char* what, int error) {
  throw DiagnosticError(make_error(fmt::format("{}: cannot {}: {}", path.string(), what, std::strerror(error))));
}

}  // namespace

void write_file_atomically(const std::filesystem::path& path, std::string_view content) {
  const auto folder = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  const auto temp = folder / fmt::format(".{}.tmp.{}", path.filename().string(), ::getpid());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(temp, "create", errno);
  std::size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      ::close(fd);
      ::unlink(temp.c_str());
      fail(temp, "write", error);
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int error = errno;
    ::close(fd);
    ::unlink(temp.c_str());
    fail(temp, "fsync", error);
  }
  ::close(fd);
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    fail(path, "rename into place", error);
  }
  // The rename is durable only once the folder's entry is on disk.
  if (const int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

}  // namespace alignkit
