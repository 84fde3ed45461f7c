#include "common/jsonl.h"

#include <utility>

#include "common/error.h"

namespace r1kit {
namespace {

bool blank(const std::string& line) { return line.find_first_not_of(" \t\r") == std::string::npos; }

}  // namespace

JsonlReader::JsonlReader(std::filesystem::path path, int64_t max_lines)
    : path_(std::move(path)), in_(path_, std::ios::binary), max_lines_(max_lines) {
  if (!in_) throw_io_error(path_.string() + ": cannot open");
}

std::optional<JsonlLine> JsonlReader::next() { return next({}); }

std::optional<JsonlLine> JsonlReader::next(const std::function<bool(int64_t)>& wanted) {
  std::string text;
  while ((max_lines_ <= 0 || lines_read_ < max_lines_) && std::getline(in_, text)) {
    ++line_number_;
    if (blank(text)) continue;
    if (wanted && !wanted(line_number_)) continue;
    ++lines_read_;
    // Parsing without exceptions first keeps the common case cheap; a bad line
    // is parsed again for the parser's own account of what is wrong.
    nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded()) {
      std::string detail = "unknown reason";
      try {
        (void)nlohmann::json::parse(text);
      } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for 1e999
        detail = e.what();
        size_t bracket = detail.find("] ");
        if (bracket != std::string::npos) detail.erase(0, bracket + 2);
      }
      throw_jsonl_line_error(path_, line_number_, "not valid JSON (" + detail + ")");
    }
    return JsonlLine{line_number_, std::move(value), std::move(text)};
  }
  return std::nullopt;
}

void throw_jsonl_line_error(const std::filesystem::path& path, int64_t line_number,
                            const std::string& what) {
  throw_data_error(path.string() + ":" + std::to_string(line_number) + ": " + what);
}

void for_each_jsonl_line(const std::filesystem::path& path,
                         const std::function<void(JsonlLine& line)>& visit, int64_t max_lines) {
  JsonlReader reader(path, max_lines);
  while (std::optional<JsonlLine> line = reader.next()) visit(*line);
}

std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& path, int64_t max_lines) {
  std::vector<nlohmann::json> values;
  for_each_jsonl_line(
      path, [&](JsonlLine& line) { values.push_back(std::move(line.value)); }, max_lines);
  return values;
}

}  // namespace r1kit
