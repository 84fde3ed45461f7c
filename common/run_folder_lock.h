// An exclusive lock on a run folder, held while one `r1kit train` writes it:
// a second run into the same folder stops at once, naming the holder (pid,
// host, command, start time). The lock is an flock() on <folder>/.lock, so it
// is released when the holder exits, however it exits; never held across fork.
#pragma once

#include <filesystem>
#include <string>

namespace r1kit {

class RunFolderLock {
 public:
  // Creates `folder` when needed and takes its lock; throws an I/O error
  // naming the folder and the holder when another process holds it.
  explicit RunFolderLock(const std::filesystem::path& folder);
  ~RunFolderLock();
  RunFolderLock(const RunFolderLock&) = delete;
  RunFolderLock& operator=(const RunFolderLock&) = delete;

  // "pid 1234 on host, since 2026-12-03 19:40:02 UTC: r1kit train recipe.json"
  static std::string holder_description(const std::filesystem::path& folder);

 private:
  std::filesystem::path path_;
  int descriptor_ = -1;
};

}  // namespace r1kit
