// The run folder keeps every metrics line across a resume and starts a fresh
// run with empty metrics.
#include "common/run_dir.h"

#include <gtest/gtest.h>

#include <fstream>

#include "common/config.h"
#include "common/error.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

fs::path fresh_folder(const std::string& name) {
  fs::path path =
      fs::temp_directory_path() / ("r1kit_test_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(path);
  return path;
}

TEST(RunDir, WritesConfigAndAppendsMetricsOnResume) {
  fs::path path = fresh_folder("run_dir");
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
  fs::remove_all(path);
}

TEST(RunDir, FreshRunTruncatesOldMetrics) {
  fs::path path = fresh_folder("run_dir_fresh");
  { RunDir(path).log_metrics({{"step", 1}}); }
  { RunDir run(path); }
  EXPECT_TRUE(read_jsonl(path / "metrics.jsonl").empty());
  fs::remove_all(path);
}

}  // namespace
}  // namespace r1kit
