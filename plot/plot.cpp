#include "plot/plot.h"

#include <c10/util/Exception.h>
#include <cairo-svg.h>
#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <numbers>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/jsonl.h"
#include "common/run_dir.h"

namespace r1kit {

namespace fs = std::filesystem;

namespace {

// Layout in pixels (SVG user units).
constexpr char kFontFamily[] = "sans-serif";
constexpr double kTextSize = 14;
constexpr double kTitleSize = 18;
constexpr double kPlotWidth = 720;
constexpr double kPlotHeight = 400;
constexpr double kTop = 56;
constexpr double kBottomMargin = 64;
constexpr double kLegendSwatch = 28;
constexpr double kLegendRow = 24;
constexpr double kCurveWidth = 2;
constexpr double kDotRadius = 3;
constexpr size_t kMaxLabelChars = 32;
constexpr size_t kDotsBelowPoints =
    40;  // sparse curves (eval every N steps) also get a dot per point

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

// Matplotlib's "tab10" palette: distinct, and readable on white.
constexpr Rgb kPalette[] = {{31, 119, 180},  {255, 127, 14}, {44, 160, 44},   {214, 39, 40},
                            {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127},
                            {188, 189, 34},  {23, 190, 207}};
constexpr Rgb kInk = {34, 34, 34};
constexpr Rgb kGrid = {230, 230, 230};

// Where a label's x lies relative to its text.
enum class TextAnchor { kStart, kMiddle, kEnd };

// What the chart is made of, in drawing order.
struct Segment {  // axes, grid, ticks, legend swatches: axis-aligned, crisp
  double x0, y0, x1, y1, width;
  Rgb color;
};
struct Curve {  // a data series
  std::vector<std::pair<double, double>> points;
  Rgb color;
  bool dots;
};
struct Label {
  double x, y;  // y = vertical middle of the capitals
  std::string text;
  double size;  // font size in pixels
  bool bold;
  TextAnchor anchor;
  Rgb color;
};
struct Scene {
  int width = 0, height = 0;
  std::vector<Segment> grid;
  std::vector<Curve> curves;
  std::vector<Segment> frame;
  std::vector<Label> labels;
};

struct SurfaceDeleter {
  void operator()(cairo_surface_t* surface) const { cairo_surface_destroy(surface); }
};
struct ContextDeleter {
  void operator()(cairo_t* context) const { cairo_destroy(context); }
};
using SurfacePointer = std::unique_ptr<cairo_surface_t, SurfaceDeleter>;
using ContextPointer = std::unique_ptr<cairo_t, ContextDeleter>;

void check_status(cairo_status_t status, const char* what) {
  TORCH_CHECK(status == CAIRO_STATUS_SUCCESS, "plot: ", what, ": ", cairo_status_to_string(status));
}

void set_font(cairo_t* context, double size, bool bold) {
  cairo_select_font_face(context, kFontFamily, CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(context, size);
}

// Measures text for the layout, before any output surface exists.
class TextMeter {
 public:
  TextMeter()
      : surface_(cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1)),
        context_(cairo_create(surface_.get())) {
    check_status(cairo_status(context_.get()), "measuring text");
  }
  double width(const std::string& text, double size, bool bold = false) {
    set_font(context_.get(), size, bold);
    cairo_text_extents_t extents;
    cairo_text_extents(context_.get(), text.c_str(), &extents);
    return extents.x_advance;
  }

 private:
  SurfacePointer surface_;
  ContextPointer context_;
};

struct Axis {
  double lo = 0, hi = 1, step = 1;
  std::vector<double> ticks;
};

// A 1, 2 or 5 times a power of ten near `value` (Heckbert, "Nice numbers for graph labels",
// Graphics Gems 1990).
double nice_number(double value, bool round) {
  double exponent = std::floor(std::log10(value));
  double fraction = value / std::pow(10.0, exponent);
  double nice;
  if (round)
    nice = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10;
  else
    nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10;
  return nice * std::pow(10.0, exponent);
}

Axis nice_axis(double lo, double hi, double min_step) {
  // A flat curve (or one too flat for doubles to tick) gets a band around its value.
  if (!(hi - lo > std::max(std::abs(lo), std::abs(hi)) * 1e-9)) {
    double pad = lo == 0 ? 1.0 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  Axis axis;
  axis.step = std::max(nice_number(nice_number(hi - lo, false) / 5, true), min_step);
  axis.lo = std::floor(lo / axis.step) * axis.step;
  axis.hi = std::ceil(hi / axis.step) * axis.step;
  auto intervals = static_cast<int64_t>(std::llround((axis.hi - axis.lo) / axis.step));
  for (int64_t i = 0; i <= intervals; ++i) {
    double tick = axis.lo + static_cast<double>(i) * axis.step;
    axis.ticks.push_back(std::abs(tick) < axis.step * 1e-9 ? 0.0 : tick);
  }
  return axis;
}

std::string tick_text(double value, const Axis& axis) {
  char buffer[32];
  double magnitude = std::max(std::abs(axis.lo), std::abs(axis.hi));
  int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(axis.step) + 1e-9)));
  if (magnitude >= 1e7 || decimals > 5) {
    std::snprintf(buffer, sizeof(buffer), "%.3g", value);
  } else {
    std::snprintf(buffer, sizeof(buffer), "%.*f", decimals, value);
  }
  return buffer;
}

std::string shorten(const std::string& text) {
  if (text.size() <= kMaxLabelChars) return text;
  size_t keep = (kMaxLabelChars - 3) / 2;
  // Head and tail: run names tend to differ at the end (lr1e-6, seed2).
  std::string_view view = text;
  std::ostringstream out;
  out << view.substr(0, keep) << "..." << view.substr(text.size() - (kMaxLabelChars - 3 - keep));
  return out.str();
}

Scene layout(const Chart& chart) {
  double x_min = INFINITY, x_max = -INFINITY, y_min = INFINITY, y_max = -INFINITY;
  for (const PlotSeries& series : chart.series) {
    TORCH_CHECK(series.x.size() == series.y.size(), "plot: series ", series.label, " has ",
                series.x.size(), " steps but ", series.y.size(), " values");
    for (size_t i = 0; i < series.x.size(); ++i) {
      x_min = std::min(x_min, series.x[i]);
      x_max = std::max(x_max, series.x[i]);
      y_min = std::min(y_min, series.y[i]);
      y_max = std::max(y_max, series.y[i]);
    }
  }
  TORCH_CHECK(std::isfinite(x_min) && std::isfinite(y_min), "plot: chart ", chart.title,
              " has no points");
  Axis x_axis = nice_axis(x_min, x_max, 1.0);  // steps are whole numbers
  Axis y_axis = nice_axis(y_min, y_max, 0.0);

  TextMeter meter;
  double y_label_width = 0;
  for (double tick : y_axis.ticks)
    y_label_width = std::max(y_label_width, meter.width(tick_text(tick, y_axis), kTextSize));
  double legend_label_width = 0;
  for (const PlotSeries& series : chart.series)
    legend_label_width =
        std::max(legend_label_width, meter.width(shorten(series.label), kTextSize));
  double left = std::round(24 + y_label_width + 12);
  double right = left + kPlotWidth;
  double top = kTop, bottom = kTop + kPlotHeight;
  double legend_x = right + 24;

  Scene scene;
  scene.width =
      static_cast<int>(std::ceil(legend_x + kLegendSwatch + 10 + legend_label_width + 24));
  scene.height = static_cast<int>(
      std::max(bottom + kBottomMargin, top + kLegendRow * (chart.series.size() + 1)));
  auto to_x = [&](double x) {
    return left + (x - x_axis.lo) / (x_axis.hi - x_axis.lo) * kPlotWidth;
  };
  auto to_y = [&](double y) {
    return bottom - (y - y_axis.lo) / (y_axis.hi - y_axis.lo) * kPlotHeight;
  };

  for (double tick : x_axis.ticks) {
    double x = std::round(to_x(tick));
    scene.grid.push_back({x, top, x, bottom, 1, kGrid});
    scene.frame.push_back({x, bottom, x, bottom + 6, 1, kInk});
    scene.labels.push_back(
        {x, bottom + 18, tick_text(tick, x_axis), kTextSize, false, TextAnchor::kMiddle, kInk});
  }
  for (double tick : y_axis.ticks) {
    double y = std::round(to_y(tick));
    scene.grid.push_back({left, y, right, y, 1, kGrid});
    scene.frame.push_back({left - 6, y, left, y, 1, kInk});
    scene.labels.push_back(
        {left - 12, y, tick_text(tick, y_axis), kTextSize, false, TextAnchor::kEnd, kInk});
  }
  scene.frame.push_back({left, top, right, top, 1, kInk});
  scene.frame.push_back({left, bottom, right, bottom, 1, kInk});
  scene.frame.push_back({left, top, left, bottom, 1, kInk});
  scene.frame.push_back({right, top, right, bottom, 1, kInk});
  scene.labels.push_back(
      {(left + right) / 2, top / 2, chart.title, kTitleSize, true, TextAnchor::kMiddle, kInk});
  scene.labels.push_back({(left + right) / 2, bottom + 46, chart.x_label, kTextSize, false,
                          TextAnchor::kMiddle, kInk});

  for (size_t i = 0; i < chart.series.size(); ++i) {
    const PlotSeries& series = chart.series[i];
    Rgb color = kPalette[i % std::size(kPalette)];
    Curve curve{{}, color, series.x.size() <= kDotsBelowPoints};
    for (size_t j = 0; j < series.x.size(); ++j)
      curve.points.emplace_back(to_x(series.x[j]), to_y(series.y[j]));
    scene.curves.push_back(std::move(curve));
    double row_y = top + 12 + kLegendRow * i;
    scene.frame.push_back({legend_x, row_y, legend_x + kLegendSwatch, row_y, 3, color});
    scene.labels.push_back({legend_x + kLegendSwatch + 10, row_y, shorten(series.label), kTextSize,
                            false, TextAnchor::kStart, kInk});
  }
  return scene;
}

void set_color(cairo_t* context, Rgb color) {
  cairo_set_source_rgb(context, color.r / 255.0, color.g / 255.0, color.b / 255.0);
}

// An axis-aligned segment as a rectangle on whole pixels, so it stays sharp.
void draw_segments(cairo_t* context, const std::vector<Segment>& segments) {
  for (const Segment& s : segments) {
    const double thickness = std::max(1.0, std::round(s.width));
    const double half = thickness / 2;
    double x0 = std::min(s.x0, s.x1), x1 = std::max(s.x0, s.x1);
    double y0 = std::min(s.y0, s.y1), y1 = std::max(s.y0, s.y1);
    if (y0 == y1) {
      y0 = std::round(y0 - half);
      y1 = y0 + thickness;
      x0 = std::round(x0 - half);
      x1 = std::round(x1 + half);
    } else {
      x0 = std::round(x0 - half);
      x1 = x0 + thickness;
      y0 = std::round(y0 - half);
      y1 = std::round(y1 + half);
    }
    cairo_rectangle(context, x0, y0, x1 - x0, y1 - y0);
    set_color(context, s.color);
    cairo_fill(context);
  }
}

void draw_curve(cairo_t* context, const Curve& curve) {
  set_color(context, curve.color);
  cairo_set_line_width(context, kCurveWidth);
  cairo_set_line_join(context, CAIRO_LINE_JOIN_ROUND);
  cairo_set_line_cap(context, CAIRO_LINE_CAP_ROUND);
  for (size_t i = 0; i < curve.points.size(); ++i) {
    const auto& [x, y] = curve.points[i];
    if (i == 0)
      cairo_move_to(context, x, y);
    else
      cairo_line_to(context, x, y);
  }
  cairo_stroke(context);
  if (!curve.dots && curve.points.size() > 1) return;
  for (const auto& [x, y] : curve.points) {
    cairo_new_sub_path(context);
    cairo_arc(context, x, y, kDotRadius, 0, 2 * std::numbers::pi);
  }
  cairo_fill(context);
}

void draw_label(cairo_t* context, const Label& label) {
  set_font(context, label.size, label.bold);
  // Capitals and digits are centred on y, whatever the label's descenders.
  cairo_text_extents_t digit, text;
  cairo_text_extents(context, "0", &digit);
  cairo_text_extents(context, label.text.c_str(), &text);
  double x = label.x;
  if (label.anchor == TextAnchor::kMiddle) x -= text.x_advance / 2;
  if (label.anchor == TextAnchor::kEnd) x -= text.x_advance;
  cairo_move_to(context, x, label.y - digit.y_bearing / 2);
  set_color(context, label.color);
  cairo_show_text(context, label.text.c_str());
}

// The one drawing path of both files.
void draw_scene(cairo_t* context, const Scene& scene) {
  cairo_set_source_rgb(context, 1, 1, 1);
  cairo_paint(context);
  draw_segments(context, scene.grid);
  for (const Curve& curve : scene.curves) draw_curve(context, curve);
  draw_segments(context, scene.frame);
  for (const Label& label : scene.labels) draw_label(context, label);
  check_status(cairo_status(context), "drawing the chart");
}

cairo_status_t append_to_string(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

}  // namespace

std::string render_svg(const Chart& chart) {
  Scene scene = layout(chart);
  std::string svg;
  {
    SurfacePointer surface(
        cairo_svg_surface_create_for_stream(append_to_string, &svg, scene.width, scene.height));
    check_status(cairo_surface_status(surface.get()), "creating the SVG surface");
    cairo_svg_surface_set_document_unit(surface.get(), CAIRO_SVG_UNIT_USER);
    ContextPointer context(cairo_create(surface.get()));
    draw_scene(context.get(), scene);
    context.reset();
    cairo_surface_finish(surface.get());  // writes the document's end
    check_status(cairo_surface_status(surface.get()), "writing the SVG");
  }
  return svg;
}

std::string render_png(const Chart& chart) {
  Scene scene = layout(chart);
  SurfacePointer surface(cairo_image_surface_create(CAIRO_FORMAT_RGB24, scene.width, scene.height));
  check_status(cairo_surface_status(surface.get()), "creating the image");
  ContextPointer context(cairo_create(surface.get()));
  draw_scene(context.get(), scene);
  std::string png;
  check_status(cairo_surface_write_to_png_stream(surface.get(), append_to_string, &png),
               "encoding the PNG");
  return png;
}

RunMetrics load_run_metrics(const fs::path& path) {
  fs::path file = fs::is_directory(path) ? path / "metrics.jsonl" : path;
  if (!fs::is_regular_file(file))
    throw_io_error(path.string() + ": no metrics.jsonl here (is it a run folder?)");
  fs::path folder = fs::absolute(file).lexically_normal().parent_path();
  return {folder.filename().string(), read_jsonl(file)};
}

std::vector<std::string> resolve_metric(const std::vector<RunMetrics>& runs,
                                        const std::string& name) {
  std::vector<std::string> keys;
  for (const std::string& key : {name, "eval/" + name}) {
    bool present = false;
    for (const RunMetrics& run : runs) {
      for (const nlohmann::json& line : run.lines)
        present = present || (line.is_object() && line.contains(key));
    }
    if (present && std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
  }
  return keys;
}

namespace {

// The finite numeric values of `key` by step, sorted; a repeated step keeps its last value.
std::map<double, double> metric_points(const RunMetrics& run, const std::string& key) {
  std::map<double, double> by_step;
  for (const nlohmann::json& line : run.lines) {
    if (!line.is_object()) continue;
    auto step = line.find("step");
    auto value = line.find(key);
    if (step == line.end() || value == line.end() || !step->is_number() || !value->is_number())
      continue;
    double y = value->get<double>();
    if (std::isfinite(y)) by_step[step->get<double>()] = y;
  }
  return by_step;
}

}  // namespace

Chart metric_chart(const std::vector<RunMetrics>& runs, const std::string& key) {
  Chart chart;
  chart.title = key;
  std::set<std::string> names;
  for (const RunMetrics& run : runs) names.insert(run.name);
  for (size_t i = 0; i < runs.size(); ++i) {
    std::map<double, double> by_step = metric_points(runs[i], key);
    if (by_step.empty()) continue;
    PlotSeries series;
    // Two runs named alike (a/run, b/run) are told apart by their position.
    series.label =
        names.size() < runs.size() ? runs[i].name + " #" + std::to_string(i + 1) : runs[i].name;
    for (const auto& [x, y] : by_step) {
      series.x.push_back(x);
      series.y.push_back(y);
    }
    chart.series.push_back(std::move(series));
  }
  return chart;
}

std::string metric_file_stem(const std::string& key) {
  std::string stem = key;
  for (char& c : stem) {
    if (c == '/' || c == '\\' || c == ' ' || c == ':') c = '_';
  }
  return stem;
}

const std::vector<std::string>& default_plot_metrics() {
  static const std::vector<std::string> metrics = {"reward", "accuracy", "kl",
                                                   "completions/mean_length"};
  return metrics;
}

PlotReport plot_runs(const std::vector<fs::path>& run_dirs, const fs::path& out,
                     const std::vector<std::string>& metrics) {
  std::vector<RunMetrics> runs;
  for (const fs::path& dir : run_dirs) runs.push_back(load_run_metrics(dir));

  PlotReport report;
  std::vector<std::string> keys;
  for (const std::string& name : metrics) {
    std::vector<std::string> found = resolve_metric(runs, name);
    if (found.empty())
      report.notes.push_back(name + ": no run logged it (nor eval/" + name + "); skipped");
    for (std::string& key : found) {
      if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(std::move(key));
    }
  }
  std::vector<Chart> charts;
  for (const std::string& key : keys) {
    Chart chart = metric_chart(runs, key);
    if (chart.series.empty()) {
      report.notes.push_back(key + ": present but never a number with a step; skipped");
      continue;
    }
    for (const RunMetrics& run : runs) {
      if (metric_points(run, key).empty()) report.notes.push_back(key + ": not in " + run.name);
    }
    charts.push_back(std::move(chart));
  }
  if (charts.empty()) {
    std::set<std::string> available;
    for (const RunMetrics& run : runs) {
      for (const nlohmann::json& line : run.lines) {
        if (!line.is_object()) continue;
        for (const auto& [key, value] : line.items()) {
          if (key != "step" && value.is_number()) available.insert(key);
        }
      }
    }
    std::string list;
    for (const std::string& key : available) list += (list.empty() ? "" : ", ") + key;
    throw_data_error("plot: none of the requested metrics is in the runs; they have: " +
                     (list.empty() ? std::string("no numeric metrics") : list));
  }

  std::error_code error;
  fs::create_directories(out, error);
  if (error) throw_io_error(out.string() + ": cannot create the output folder: " + error.message());
  for (const Chart& chart : charts) {
    std::string stem = metric_file_stem(chart.title);
    write_file_atomically(out / (stem + ".svg"), render_svg(chart));
    write_file_atomically(out / (stem + ".png"), render_png(chart));
    report.written.push_back(out / (stem + ".svg"));
    report.written.push_back(out / (stem + ".png"));
  }
  return report;
}

}  // namespace r1kit
