// A file that a run appends lines to (metrics.jsonl, samples.jsonl): every
// write is checked, and a write that fails part-way (a full disk, a file-size
// limit) is rolled back to the last whole line before the error is thrown, so
// the file never holds a truncated line. Not thread-safe: one writer.
#pragma once

#include <filesystem>
#include <string>

namespace r1kit {

class AppendOnlyFile {
 public:
  AppendOnlyFile() = default;
  // Opens `path` for appending; with `truncate` it starts empty. Throws an
  // I/O error naming the file when it cannot be opened.
  AppendOnlyFile(const std::filesystem::path& path, bool truncate);
  ~AppendOnlyFile();
  AppendOnlyFile(AppendOnlyFile&& other) noexcept;
  AppendOnlyFile& operator=(AppendOnlyFile&& other) noexcept;
  AppendOnlyFile(const AppendOnlyFile&) = delete;
  AppendOnlyFile& operator=(const AppendOnlyFile&) = delete;

  bool is_open() const { return descriptor_ >= 0; }
  const std::filesystem::path& path() const { return path_; }

  // Appends `text` whole or not at all: on a failed write the file is cut
  // back to its size before the call and an I/O error naming the file and
  // the cause ("No space left on device") is thrown.
  void append(const std::string& text);

 private:
  std::filesystem::path path_;
  int descriptor_ = -1;
};

}  // namespace r1kit
