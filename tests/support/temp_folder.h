// TempFolder: a fresh, uniquely named folder under the system temp folder for
// one test, removed with everything in it when the object goes out of scope,
// so a test that stops at a failed ASSERT leaves nothing behind. Each test
// owns its own; the object is not meant to be shared between threads.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace r1kit::testing {

class TempFolder {
 public:
  // Creates <temp dir>/r1kit-<label>-XXXXXX, unique across processes and
  // threads. An empty label names the folder after the running test.
  explicit TempFolder(std::string_view label = "");
  // Removes the folder and its contents; a failure to remove is ignored.
  ~TempFolder();
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // path() / relative: `folder / "model"`.
  std::filesystem::path operator/(const std::filesystem::path& relative) const {
    return path_ / relative;
  }
  // Writes `text` (bytes as they are) to path() / relative, creating parent
  // folders; returns the file's path.
  std::filesystem::path write_file(const std::filesystem::path& relative,
                                   std::string_view text) const;
  // Creates path() / relative and its parents; returns it.
  std::filesystem::path make_folder(const std::filesystem::path& relative) const;

 private:
  std::filesystem::path path_;
};

}  // namespace r1kit::testing
