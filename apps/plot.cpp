// `r1kit plot RUN_DIR... [--out DIR] [--metrics reward,accuracy,...]`: draws
// each metric against step, the runs overlaid, as <out>/<metric>.svg and .png
// (the plot library, plot/plot.h).
#include "plot/plot.h"

#include <CLI/CLI.hpp>
#include <iostream>

#include "apps/subcommand.h"
#include "common/logging.h"

namespace r1kit::apps {
namespace {

struct PlotArguments {
  std::vector<std::string> run_dirs;
  std::string out = "plots";
  std::vector<std::string> metrics = default_plot_metrics();
};

int run_plot(const PlotArguments& args) {
  std::vector<std::filesystem::path> runs(args.run_dirs.begin(), args.run_dirs.end());
  PlotReport report = plot_runs(runs, args.out, args.metrics);
  for (const std::string& note : report.notes) log_info() << "plot: " << note;
  for (const std::filesystem::path& file : report.written) std::cout << file.string() << "\n";
  return 0;
}

Action setup(CLI::App& app) {
  auto args = std::make_shared<PlotArguments>();
  app.add_option("runs", args->run_dirs,
                 "run folders (each with a metrics.jsonl), overlaid in one chart per metric")
      ->required();
  app.add_option("--out", args->out, "folder for the .svg and .png files")->capture_default_str();
  app.add_option(
         "--metrics", args->metrics,
         "comma-separated metric keys; a name also matches eval/<name> (accuracy -> eval/accuracy)")
      ->delimiter(',')
      ->capture_default_str();
  return [args] { return run_plot(*args); };
}

}  // namespace

REGISTER_SUBCOMMAND("plot", "draw metrics against step for one or more runs, as SVG and PNG",
                    setup);

}  // namespace r1kit::apps
