// What the fuzz targets share: the input as text or as parts, a private
// temporary folder for parsers that read files (removed at exit), and the rule
// that a parser may reject input only with r1kit::Error. One fuzzing process
// runs one input at a time; nothing here is thread-safe.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/logging.h"

namespace r1kit::fuzz {

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// `text` cut at each `separator`; always at least one part.
inline std::vector<std::string_view> split_parts(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t at = text.find(separator, start);
    parts.push_back(text.substr(start, at == std::string_view::npos ? at : at - start));
    if (at == std::string_view::npos) return parts;
    start = at + 1;
  }
}

// The process's own folder under $TMPDIR (else /dev/shm, in memory, else
// /tmp), created on first use and removed when the process exits.
class TempFolder {
 public:
  TempFolder() {
    const char* variable = std::getenv("TMPDIR");
    std::string base = variable && *variable                    ? variable
                       : ::access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm"
                                                                : "/tmp";
    std::string pattern = base + "/r1kit-fuzz-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    path_ = pattern;
  }
  ~TempFolder() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline const std::filesystem::path& temp_folder() {
  static const TempFolder folder;
  return folder.path();
}

// Writes `bytes` to `name` inside temp_folder() and returns its path.
inline std::filesystem::path write_temp_file(const std::string& name, std::string_view bytes) {
  std::filesystem::path path = temp_folder() / name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) std::abort();
  return path;
}

// Runs `parse`; an r1kit::Error is the parser rejecting the input, which is
// fine. Any other exception escapes and libFuzzer reports it as a crash: a
// parser of outside input must say what is wrong with it, with context.
template <class Parse>
void accept_or_reject(Parse&& parse) {
  try {
    parse();
  } catch (const Error&) {
  }
}

// Warnings about skipped input would flood the fuzzer's output.
inline void quiet_logging() { set_log_level(LogLevel::kError); }

}  // namespace r1kit::fuzz
