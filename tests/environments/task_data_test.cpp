// Task data files (environments/task_data.h), shared by `r1kit data generate`
// and pipeline generate steps: each format's fields, the seed fixing the file,
// and the config errors that name the source.
#include "environments/task_data.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/error.h"
#include "common/run_dir.h"
#include "tests/support/temp_folder.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

TaskDataConfig addition_config(const std::string& format, const fs::path& output) {
  TaskDataConfig config;
  config.environment.name = "addition";
  config.environment.options = {{"digits", 2}, {"worked_steps", true}};
  config.environment.prompt_template = "plain";
  config.format = format;
  config.count = 5;
  config.seed = 11;
  config.output = output.string();
  return config;
}

TEST(TaskData, EachFormatWritesItsFieldsAndTheSeedFixesTheFile) {
  const testing::TempFolder folder;
  for (const std::string format : {"sft", "text", "tasks"}) {
    const fs::path path = folder / (format + ".jsonl");
    EXPECT_EQ(write_task_data(addition_config(format, path), "test"), 5);
    auto lines = read_jsonl(path);
    ASSERT_EQ(lines.size(), 5u) << format;
    for (const auto& line : lines) {
      if (format == "sft") {
        EXPECT_TRUE(line.contains("prompt") && line.contains("response")) << line.dump();
      } else if (format == "text") {
        EXPECT_TRUE(line.contains("text") && line.size() == 1) << line.dump();
      } else {
        EXPECT_TRUE(line.contains("prompt") && line.contains("answer")) << line.dump();
      }
    }
    const fs::path again = folder / (format + "_again.jsonl");
    write_task_data(addition_config(format, again), "test");
    EXPECT_EQ(read_jsonl(again), lines) << format;
  }
}

TEST(TaskData, MistakesAreConfigErrorsNamingTheSource) {
  const testing::TempFolder folder;
  TaskDataConfig config = addition_config("sft", folder / "bad.jsonl");
  config.environment.options = {{"digits", 2}};  // no worked solutions
  EXPECT_THROW(write_task_data(config, "test"), Error);
  EXPECT_FALSE(fs::exists(config.output));  // nothing half-written
  config.environment.name = "adition";
  try {
    check_task_data(config, "pipeline.json: step \"data\": generate");
    FAIL() << "an unknown environment must be an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_NE(std::string(e.what()).find(
                  "step \"data\": generate: environment.name: unknown environment"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace r1kit
