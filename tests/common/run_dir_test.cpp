// The run folder keeps every metrics line across a resume and starts a fresh
// run with empty metrics.
#include "common/run_dir.h"

#include <gtest/gtest.h>

#include "common/config.h"
#include "common/error.h"
#include "tests/support/temp_folder.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

TEST(RunDir, WritesConfigAndAppendsMetricsOnResume) {
  const testing::TempFolder temp;
  const fs::path path = temp / "run";  // RunDir creates it
  {
    RunDir run(path);
    run.write_config({{"stage", "grpo"}});
    run.log_metrics({{"step", 1}, {"reward", 0.5}});
  }
  {
    RunDir resumed(path, /*append=*/true);
    resumed.log_metrics({{"step", 2}, {"reward", 0.75}});
  }
  auto lines = read_jsonl(path / "metrics.jsonl");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1]["step"], 2);
  EXPECT_EQ(read_json_file((path / "config.json").string())["stage"], "grpo");
}

TEST(RunDir, FreshRunTruncatesOldMetrics) {
  const testing::TempFolder temp;
  const fs::path path = temp / "run";
  { RunDir(path).log_metrics({{"step", 1}}); }
  { RunDir run(path); }
  EXPECT_TRUE(read_jsonl(path / "metrics.jsonl").empty());
}

}  // namespace
}  // namespace r1kit
