// Reading JSON-lines files: one JSON value per line, blank lines skipped, each
// value handed over with its 1-based line number; a malformed line is a data
// error naming file and line ("file.jsonl:12: not valid JSON (...)"). A reader
// streams (the file is never loaded whole); one reader belongs to one thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace r1kit {

// One parsed line of a JSONL file.
struct JsonlLine {
  int64_t number = 0;    // 1-based line number in the file (blank lines count)
  nlohmann::json value;  // the parsed line
  std::string text;      // the line as written, without its newline
};

class JsonlReader {
 public:
  // Opens `path`; an I/O error naming it when it cannot be opened. With
  // `max_lines` > 0, at most that many non-blank lines are read.
  explicit JsonlReader(std::filesystem::path path, int64_t max_lines = 0);

  // The next non-blank line, parsed; nullopt at the end of the file. A line
  // that is not valid JSON throws a data error "path:N: not valid JSON (...)";
  // the reader then stands after it, so a caller that skips bad lines catches
  // the error and calls next() again.
  std::optional<JsonlLine> next();

  // Like next(), but passes over the lines whose number `wanted` refuses
  // without parsing them (a split by line number).
  std::optional<JsonlLine> next(const std::function<bool(int64_t line_number)>& wanted);

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::ifstream in_;
  int64_t max_lines_;
  int64_t line_number_ = 0;  // of the last line read
  int64_t lines_read_ = 0;   // non-blank lines handed over or refused as malformed
};

// "path:N: what" as a data error, for a caller's complaint about a line's content.
[[noreturn]] void throw_jsonl_line_error(const std::filesystem::path& path, int64_t line_number,
                                         const std::string& what);

// Calls `visit` with every non-blank line of `path` in order (see JsonlReader).
void for_each_jsonl_line(const std::filesystem::path& path,
                         const std::function<void(JsonlLine& line)>& visit, int64_t max_lines = 0);

// Every non-blank line of `path`, parsed; the first malformed line throws.
std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& path, int64_t max_lines = 0);

}  // namespace r1kit
