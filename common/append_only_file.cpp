#include "common/append_only_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "common/error.h"

namespace r1kit {

AppendOnlyFile::AppendOnlyFile(const std::filesystem::path& path, bool truncate) : path_(path) {
  const int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0);
  descriptor_ = ::open(path.c_str(), flags, 0644);
  if (descriptor_ < 0)
    throw_io_error(path.string() + ": cannot open for writing: " + std::strerror(errno));
}

AppendOnlyFile::~AppendOnlyFile() {
  if (descriptor_ >= 0) ::close(descriptor_);
}

AppendOnlyFile::AppendOnlyFile(AppendOnlyFile&& other) noexcept
    : path_(std::move(other.path_)), descriptor_(std::exchange(other.descriptor_, -1)) {}

AppendOnlyFile& AppendOnlyFile::operator=(AppendOnlyFile&& other) noexcept {
  if (this != &other) {
    if (descriptor_ >= 0) ::close(descriptor_);
    path_ = std::move(other.path_);
    descriptor_ = std::exchange(other.descriptor_, -1);
  }
  return *this;
}

void AppendOnlyFile::append(const std::string& text) {
  if (descriptor_ < 0) throw_io_error(path_.string() + ": not open for writing");
  struct stat before {};
  const bool sized = ::fstat(descriptor_, &before) == 0 && S_ISREG(before.st_mode);
  size_t written = 0;
  while (written < text.size()) {
    const ssize_t count = ::write(descriptor_, text.data() + written, text.size() - written);
    if (count < 0 && errno == EINTR) continue;
    if (count <= 0) {
      const int cause = count < 0 ? errno : ENOSPC;
      // Cut the partial line off so that the file still ends with a whole line.
      if (sized && written > 0) {
        const int cut = ::ftruncate(descriptor_, before.st_size);
        (void)cut;  // the write's own error is the one to report
      }
      throw_io_error(path_.string() + ": write failed: " + std::strerror(cause));
    }
    written += static_cast<size_t>(count);
  }
}

}  // namespace r1kit
