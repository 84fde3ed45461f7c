// Reward curves: metrics against step, several runs overlaid with a legend,
// drawn once through cairo onto an SVG and a PNG surface that look the same.
// Lives in the plot library (r1kit_plot), outside libr1kit: `r1kit plot` and a
// pipeline's plot step (plot_step.cpp) call plot_runs(). Pure functions of
// their inputs; safe to call from several threads on different charts.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace r1kit {

// One curve: points sorted by x, drawn as a line (and dots when sparse).
struct PlotSeries {
  std::string label;      // legend text, e.g. the run folder name
  std::vector<double> x;  // step
  std::vector<double> y;  // metric value, same length as x
};

struct Chart {
  std::string title;  // the metric key, e.g. "completions/mean_length"
  std::string x_label = "step";
  std::vector<PlotSeries> series;  // REQUIRES: at least one point in all
};

// The chart as a standalone SVG document: axes, ticks with numbers, grid,
// lines, legend; text as glyph outlines of a sans-serif font.
std::string render_svg(const Chart& chart);
// The same drawing as a PNG file (8-bit RGB, anti-aliased).
std::string render_png(const Chart& chart);

// The metrics of one run folder: every line of its metrics.jsonl.
struct RunMetrics {
  std::string name;  // the folder name, shown in the legend
  std::vector<nlohmann::json> lines;
};

// Reads `<path>/metrics.jsonl`, or `path` itself when it is a file. Throws an
// I/O error when there is none and a data error (file:line) on a bad line.
RunMetrics load_run_metrics(const std::filesystem::path& path);

// The keys a requested metric stands for that appear in at least one run:
// `name` itself and "eval/<name>" (evaluation lines), in that order.
std::vector<std::string> resolve_metric(const std::vector<RunMetrics>& runs,
                                        const std::string& name);

// The chart of `key` against "step" over the runs that have it. Lines without
// a numeric step or value are skipped; a step logged twice (a resumed run)
// keeps its last value.
Chart metric_chart(const std::vector<RunMetrics>& runs, const std::string& key);

// "completions/mean_length" -> "completions_mean_length": the file stem of a chart.
std::string metric_file_stem(const std::string& key);

// The metrics drawn when none are named: reward, accuracy, kl, completions/mean_length.
const std::vector<std::string>& default_plot_metrics();

struct PlotReport {
  std::vector<std::filesystem::path> written;  // <out>/<stem>.svg and .png per chart
  std::vector<std::string> notes;              // metrics skipped, and why
};

// Draws every requested metric that some run has into `out` (created if
// needed). Throws a data error naming the keys the runs do have when none of
// `metrics` is found.
PlotReport plot_runs(const std::vector<std::filesystem::path>& run_dirs,
                     const std::filesystem::path& out, const std::vector<std::string>& metrics);

}  // namespace r1kit
