#include <alignkit/atomic_file.hpp>

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

AtomicFile::AtomicFile(std::filesystem::path path) : path_(std::move(path)) {
  const auto folder = path_.parent_path().empty() ? std::filesystem::path(".") : path_.parent_path();
  temp_ = folder / fmt::format(".{}.tmp.{}", path_.filename().string(), ::getpid());
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(temp_, "create", errno);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_.c_str());
}

void AtomicFile::write(const void* data, std::size_t size) {
  const auto* bytes = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, bytes, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(temp_, "write", errno);
    bytes += n;
    size -= static_cast<std::size_t>(n);
  }
}

void AtomicFile::commit() {
  if (::fsync(fd_) != 0) fail(temp_, "fsync", errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail(temp_, "close", errno);
  if (::rename(temp_.c_str(), path_.c_str()) != 0) fail(path_, "rename into place", errno);
  committed_ = true;
  // The rename is durable only once the folder's entry is on disk.
  const auto folder = path_.parent_path().empty() ? std::filesystem::path(".") : path_.parent_path();
  if (const int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

void write_file_atomically(const std::filesystem::path& path, std::string_view content) {
  AtomicFile file(path);
  file.write(content);
  file.commit();
}

}  // namespace alignkit
