// The plot library's pipeline step: linking the library registers "plot", so
// a pipeline with a plot step loads (defaults filled, mistakes named by step
// and key before anything runs) and its run writes the charts.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "learner/pipeline.h"
#include "plot/plot.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class PlotStepTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("r1kit_test_plot_step_" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "grpo");
    std::ofstream metrics(root_ / "grpo" / "metrics.jsonl");
    for (int step = 1; step <= 4; ++step)
      metrics << json{{"step", step}, {"reward", 0.1 * step}}.dump() << "\n";
  }
  void TearDown() override { fs::remove_all(root_); }

  // A pipeline of one plot step with `section`, written into root_.
  std::string write_pipeline(const json& section) {
    json pipeline = {{"pipeline", "plots-only"},
                     {"output_dir", (root_ / "out").string()},
                     {"steps", {{{"name", "plots"}, {"plot", section}}}}};
    std::ofstream(root_ / "pipeline.json") << pipeline.dump(2);
    return (root_ / "pipeline.json").string();
  }

  fs::path root_;
};

TEST_F(PlotStepTest, LinkingThePlotLibraryRegistersThePlotStep) {
  EXPECT_TRUE(pipeline_step_kinds().contains("plot"));
}

TEST_F(PlotStepTest, APlotStepLoadsWithDefaultMetricsAndWritesTheCharts) {
  Pipeline pipeline = load_pipeline(
      write_pipeline({{"runs", {(root_ / "grpo").string()}}, {"out", "${output_dir}/plots"}}), {});
  ASSERT_EQ(pipeline.steps.size(), 1u);
  EXPECT_EQ(pipeline.steps[0].kind, "plot");
  const json& resolved = pipeline.steps[0].resolved.at("plot");
  EXPECT_EQ(resolved.at("out"), (root_ / "out" / "plots").string());
  EXPECT_EQ(resolved.at("metrics").get<std::vector<std::string>>(), default_plot_metrics());

  EXPECT_TRUE(run_pipeline(pipeline, {}));
  EXPECT_TRUE(fs::exists(root_ / "out" / "plots" / "reward.svg"));
  EXPECT_TRUE(fs::exists(root_ / "out" / "plots" / "reward.png"));
  EXPECT_FALSE(fs::exists(root_ / "out" / "plots" / "kl.png"));  // never logged: a note, no file
}

TEST_F(PlotStepTest, AMistakeNamesTheStepAndKey) {
  try {
    load_pipeline(write_pipeline({{"runs", {(root_ / "grpo").string()}}}), {});
    FAIL() << "a plot step without out must be an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_NE(std::string(e.what()).find("step \"plots\": plot.out"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(
      load_pipeline(write_pipeline({{"runs", {"a"}}, {"out", "b"}, {"metric", {"kl"}}}), {}),
      Error);
}

}  // namespace
}  // namespace r1kit
