#include "common/run_folder_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

std::string command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (char& c : text)
    if (c == '\0') c = ' ';
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

std::string utc_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &utc);
  return text;
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown host";
  return name;
}

}  // namespace

RunFolderLock::RunFolderLock(const fs::path& folder) : path_(folder / ".lock") {
  std::error_code error;
  fs::create_directories(folder, error);
  if (error) throw_io_error(folder.string() + ": cannot create the run folder: " + error.message());
  descriptor_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (descriptor_ < 0)
    throw_io_error(path_.string() + ": cannot open the run folder's lock: " + std::strerror(errno));
  if (::flock(descriptor_, LOCK_EX | LOCK_NB) != 0) {
    const int cause = errno;
    ::close(descriptor_);
    descriptor_ = -1;
    if (cause != EWOULDBLOCK)
      throw_io_error(path_.string() + ": cannot lock the run folder: " + std::strerror(cause));
    throw_io_error(folder.string() + ": another run is writing this folder (" +
                   holder_description(folder) +
                   "); wait for it to end or give this run another output_dir");
  }
  std::ostringstream holder;
  holder << "pid " << ::getpid() << " on " << host_name() << ", since " << utc_now() << ": "
         << command_line() << "\n";
  const std::string text = holder.str();
  if (::ftruncate(descriptor_, 0) == 0) {
    const ssize_t written = ::pwrite(descriptor_, text.data(), text.size(), 0);
    (void)written;  // the description is a courtesy; the lock is the flock
  }
}

RunFolderLock::~RunFolderLock() {
  if (descriptor_ >= 0) ::close(descriptor_);  // releases the flock
}

std::string RunFolderLock::holder_description(const fs::path& folder) {
  std::ifstream in(folder / ".lock");
  std::string line;
  std::getline(in, line);
  return line.empty() ? "holder unknown" : line;
}

}  // namespace r1kit
