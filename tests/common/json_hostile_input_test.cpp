// JSON from outside that nlohmann::json rejects with something other than a
// parse_error (a number too large for a double) or that cannot be written back
// (a --set value that is not UTF-8): each must come out as r1kit::Error naming
// the file, line or override, as the fuzz targets config_override, model_config
// and jsonl (fuzz/) found they did not.
#include <gtest/gtest.h>

#include <string>

#include "common/config.h"
#include "common/error.h"
#include "common/jsonl.h"
#include "tests/support/temp_folder.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

fs::path write_file(const std::string& name, const std::string& text) {
  static const testing::TempFolder folder("json_hostile_input");
  return folder.write_file(name, text);
}

TEST(JsonHostileInput, NumberTooLargeForADoubleInAJsonFileIsAConfigError) {
  const fs::path path = write_file("config.json", "{\"hidden_size\": 1e999}");
  try {
    read_json_file(path.string());
    FAIL() << "1e999 was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("1e999"), std::string::npos) << e.what();
  }
}

TEST(JsonHostileInput, NumberTooLargeForADoubleInAJsonlLineIsADataErrorNamingTheLine) {
  const fs::path path = write_file("tasks.jsonl", "{\"a\": 1}\n{\"a\": -1e999}\n{\"a\": 3}\n");
  JsonlReader reader(path);
  EXPECT_EQ(reader.next()->value["a"], 1);
  try {
    reader.next();
    FAIL() << "-1e999 was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kData);
    EXPECT_NE(std::string(e.what()).find("tasks.jsonl:2: not valid JSON"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(reader.next()->value["a"], 3);  // the reader stands after the bad line
}

TEST(JsonHostileInput, OverrideThatIsNotUtf8IsAUsageError) {
  nlohmann::json recipe = {{"stage", "sft"}};
  for (const std::string assignment : {"stage=\xff\xfe", "stage\xc3=sft", "a.b=\"\xe2\x82\""}) {
    try {
      apply_override(recipe, assignment);
      FAIL() << "accepted a value that is not UTF-8";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kUsage);
      EXPECT_NE(std::string(e.what()).find("not valid UTF-8"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(recipe, (nlohmann::json{{"stage", "sft"}}));
  EXPECT_NO_THROW(recipe.dump());
}

}  // namespace
}  // namespace r1kit
