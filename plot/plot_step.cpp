// A pipeline's plot step, `{"name": "plots", "plot": {"runs": [...], "out": ...}}`:
// `r1kit plot RUNS... --out OUT --metrics ...` as a step. The plot library
// registers it with the pipeline's step kinds when it is loaded, so a program
// that does not link the library refuses a plot step when it loads the pipeline.
#include <filesystem>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/logging.h"
#include "learner/pipeline.h"
#include "plot/plot.h"

namespace r1kit {
namespace {

struct PlotStepConfig {
  std::vector<std::string> runs;     // run folders, overlaid; required
  std::string out;                   // folder for the .svg and .png files; required
  std::vector<std::string> metrics;  // metric keys; empty = default_plot_metrics()

  void visit(ConfigVisitor& v) {
    v.field("runs", runs, {.required = true});
    v.field("out", out, {.required = true});
    v.field("metrics", metrics);
  }
};

// The step's section under its key, so errors read `step "plots": plot.out: ...`.
struct PlotStepSection {
  PlotStepConfig plot;

  void visit(ConfigVisitor& v) { v.section("plot", plot); }
};

nlohmann::json load_plot_step(const nlohmann::json& section, const std::string& source) {
  PlotStepConfig config = read_config<PlotStepSection>({{"plot", section}}, source).plot;
  if (config.metrics.empty()) config.metrics = default_plot_metrics();
  return write_config(config);
}

void run_plot_step(const nlohmann::json& resolved, const std::string& source) {
  PlotStepConfig config = read_config<PlotStepConfig>(resolved, source + ": plot");
  std::vector<std::filesystem::path> runs(config.runs.begin(), config.runs.end());
  PlotReport report = plot_runs(runs, config.out, config.metrics);
  for (const std::string& note : report.notes) log_info() << "plot: " << note;
  log_info() << "wrote " << report.written.size() << " plot files to " << config.out;
}

}  // namespace

R1KIT_REGISTER(pipeline_step_kinds(), "plot", (PipelineStepKind{load_plot_step, run_plot_step}));

}  // namespace r1kit
