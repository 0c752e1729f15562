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
  sync_directory(path_.parent_path().empty() ? std::filesystem::path(".") : path_.parent_path());
}

void sync_directory(const std::filesystem::path& dir) {
  if (const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

AtomicDirectory::AtomicDirectory(std::filesystem::path path) : path_(std::move(path)) {
  const auto folder = path_.parent_path().empty() ? std::filesystem::path(".") : path_.parent_path();
  temp_ = folder / fmt::format(".{}.tmp.{}", path_.filename().string(), ::getpid());
  std::error_code ec;
  std::filesystem::remove_all(temp_, ec);
  if (!std::filesystem::create_directory(temp_, ec) || ec) fail(temp_, "create the folder", ec ? ec.value() : EEXIST);
}

AtomicDirectory::~AtomicDirectory() {
  std::error_code ec;
  if (!committed_) std::filesystem::remove_all(temp_, ec);
}

void AtomicDirectory::commit() {
  sync_directory(temp_);
  // rename(2) onto an existing empty folder would succeed and hide a logic error; refuse it.
  if (std::filesystem::exists(path_)) fail(path_, "rename a folder into place", EEXIST);
  if (::rename(temp_.c_str(), path_.c_str()) != 0) fail(path_, "rename a folder into place", errno);
  committed_ = true;
  sync_directory(path_.parent_path().empty() ? std::filesystem::path(".") : path_.parent_path());
}

void write_file_atomically(const std::filesystem::path& path, std::string_view content) {
  AtomicFile file(path);
  file.write(content);
  file.commit();
}

}  // namespace alignkit
