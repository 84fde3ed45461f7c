// The JSONL reader: values with their line numbers, blank lines skipped, a
// malformed line named by file and line, the line limit and the line filter.
#include "common/jsonl.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "common/error.h"
#include "tests/support/temp_folder.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

// One folder for the suite, removed when the test binary exits.
fs::path write_file(const std::string& name, const std::string& text) {
  static const testing::TempFolder folder("jsonl");
  return folder.write_file(name, text);
}

TEST(JsonlReader, ReadsValuesWithTheirLineNumbersAndSkipsBlankLines) {
  fs::path path = write_file("numbers.jsonl", "{\"a\": 1}\n\n  \r\n[2]\r\n\"three\"");
  std::vector<JsonlLine> lines;
  for_each_jsonl_line(path, [&](JsonlLine& line) { lines.push_back(line); });
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].number, 1);
  EXPECT_EQ(lines[0].value["a"], 1);
  EXPECT_EQ(lines[0].text, "{\"a\": 1}");
  EXPECT_EQ(lines[1].number, 4);
  EXPECT_EQ(lines[1].value, nlohmann::json::array({2}));
  EXPECT_EQ(lines[2].number, 5);  // the last line needs no newline
  EXPECT_EQ(lines[2].value, "three");
  EXPECT_EQ(read_jsonl(path).size(), 3u);
}

TEST(JsonlReader, MalformedLineIsADataErrorNamingFileAndLine) {
  fs::path path = write_file("data.jsonl", "{\"a\": 1}\n\n{oops\n{\"b\": 2}\n");
  try {
    read_jsonl(path);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_EQ(what.rfind(path.string() + ":3: not valid JSON (", 0), 0u) << what;
    EXPECT_EQ(e.kind(), ErrorKind::kData);
  }
  // A lenient caller catches the error and goes on after the bad line.
  JsonlReader reader(path);
  EXPECT_EQ(reader.next()->number, 1);
  EXPECT_THROW(reader.next(), Error);
  std::optional<JsonlLine> after = reader.next();
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->number, 4);
  EXPECT_EQ(after->value["b"], 2);
  EXPECT_FALSE(reader.next().has_value());
}

TEST(JsonlReader, MissingFileIsAnIoError) {
  try {
    const testing::TempFolder folder;
    JsonlReader reader(folder / "r1kit_no_such_file.jsonl");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_NE(std::string(e.what()).find("r1kit_no_such_file.jsonl"), std::string::npos);
  }
}

TEST(JsonlReader, StopsAtTheLineLimit) {
  fs::path path = write_file("limit.jsonl", "1\n\n2\n3\n{bad\n");
  std::vector<nlohmann::json> two = read_jsonl(path, /*max_lines=*/2);
  EXPECT_EQ(two, (std::vector<nlohmann::json>{1, 2}));
  EXPECT_EQ(read_jsonl(path, 3).size(), 3u);  // the bad line lies past the limit
  EXPECT_THROW(read_jsonl(path), Error);
}

TEST(JsonlReader, PassesOverRefusedLinesWithoutParsingThem) {
  fs::path path = write_file("split.jsonl", "1\n{bad\n3\n4\n");
  JsonlReader reader(path);
  std::vector<int64_t> numbers;
  auto odd = [](int64_t number) { return number % 2 == 1; };
  while (std::optional<JsonlLine> line = reader.next(odd)) numbers.push_back(line->number);
  EXPECT_EQ(numbers, (std::vector<int64_t>{1, 3}));
}

TEST(JsonlReader, LineErrorsReadAsFileColonLine) {
  try {
    throw_jsonl_line_error("tasks.jsonl", 12, "no \"prompt\" key");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "tasks.jsonl:12: no \"prompt\" key");
    EXPECT_EQ(e.kind(), ErrorKind::kData);
  }
}

}  // namespace
}  // namespace r1kit
