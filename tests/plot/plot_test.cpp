// The plot library: two runs overlaid into SVG and PNG files that are well
// formed (the PNG read back by cairo: 8-bit RGB of the chart's size), missing
// metrics are skipped with a note, and the picture draws what the chart says.
#include "plot/plot.h"

#include <cairo.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

#include "common/error.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

class PlotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("r1kit_test_plot_" + std::to_string(getpid()));
    fs::remove_all(root_);
    write_run("grpo-small", 0.1, 0.02);
    write_run("grpo-large", 0.3, 0.05);
  }
  void TearDown() override { fs::remove_all(root_); }

  // Ten training steps (kl missing on step 3), and an eval line every 5 steps.
  void write_run(const std::string& name, double start, double slope) {
    fs::create_directories(root_ / name);
    std::ofstream out(root_ / name / "metrics.jsonl");
    for (int step = 1; step <= 10; ++step) {
      nlohmann::json line = {{"step", step}, {"reward", start + slope * step}};
      if (step != 3) line["kl"] = 0.001 * step;
      out << line.dump() << "\n";
      if (step % 5 == 0)
        out << nlohmann::json{{"step", step}, {"eval/accuracy", start + 0.01 * step}}.dump()
            << "\n";
    }
  }

  std::string read(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  fs::path root_;
};

struct Rgb {
  int r = 0, g = 0, b = 0;
};

// tab10's first two colours, as the curves and legend swatches are drawn.
constexpr Rgb kBlue = {31, 119, 180};
constexpr Rgb kOrange = {255, 127, 14};
// The same colours as cairo writes them into an SVG style.
constexpr const char* kSvgBlue = "rgb(12.156863%,46.666667%,70.588235%)";
constexpr const char* kSvgOrange = "rgb(100%,49.803922%,5.490196%)";

// A PNG file read back: its colour type from the IHDR, and the pixels.
struct DecodedPng {
  int width = 0, height = 0;
  int color_type = -1;      // 2 = RGB
  std::vector<Rgb> pixels;  // (height, width)

  Rgb pixel(int x, int y) const { return pixels[static_cast<size_t>(y) * width + x]; }
  // Pixels within `tolerance` of `color` in every channel: anti-aliased edges blend.
  int count(Rgb color, int tolerance = 12) const {
    int n = 0;
    for (const Rgb& p : pixels) {
      n += std::abs(p.r - color.r) <= tolerance && std::abs(p.g - color.g) <= tolerance &&
           std::abs(p.b - color.b) <= tolerance;
    }
    return n;
  }
};

DecodedPng decode_png(const std::string& png) {
  DecodedPng decoded;
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(png.substr(12, 4), "IHDR");
  if (png.size() > 25) decoded.color_type = png[25];
  struct Reader {
    const std::string& bytes;
    size_t at = 0;
  } reader{png};
  auto read = [](void* closure, unsigned char* data, unsigned int length) {
    auto* r = static_cast<Reader*>(closure);
    if (r->at + length > r->bytes.size()) return CAIRO_STATUS_READ_ERROR;
    std::memcpy(data, r->bytes.data() + r->at, length);
    r->at += length;
    return CAIRO_STATUS_SUCCESS;
  };
  cairo_surface_t* surface = cairo_image_surface_create_from_png_stream(read, &reader);
  EXPECT_EQ(cairo_surface_status(surface), CAIRO_STATUS_SUCCESS);
  if (cairo_surface_status(surface) == CAIRO_STATUS_SUCCESS) {
    cairo_surface_flush(surface);
    decoded.width = cairo_image_surface_get_width(surface);
    decoded.height = cairo_image_surface_get_height(surface);
    const int stride = cairo_image_surface_get_stride(surface);
    const unsigned char* data = cairo_image_surface_get_data(surface);
    for (int y = 0; y < decoded.height; ++y) {
      for (int x = 0; x < decoded.width; ++x) {
        uint32_t word;  // 0x00RRGGBB in native byte order (RGB24)
        std::memcpy(&word, data + static_cast<size_t>(y) * stride + 4 * x, 4);
        decoded.pixels.push_back({static_cast<int>((word >> 16) & 0xFF),
                                  static_cast<int>((word >> 8) & 0xFF),
                                  static_cast<int>(word & 0xFF)});
      }
    }
  }
  cairo_surface_destroy(surface);
  return decoded;
}

size_t occurrences(const std::string& text, const std::string& part) {
  size_t count = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++count;
  return count;
}

TEST_F(PlotTest, OverlaysTwoRunsIntoSvgAndPngFiles) {
  fs::path out = root_ / "plots";
  PlotReport report = plot_runs({root_ / "grpo-small", root_ / "grpo-large"}, out,
                                {"reward", "accuracy", "kl", "completions/mean_length"});

  for (const char* stem : {"reward", "eval_accuracy", "kl"}) {
    EXPECT_TRUE(fs::exists(out / (std::string(stem) + ".svg"))) << stem;
    EXPECT_TRUE(fs::exists(out / (std::string(stem) + ".png"))) << stem;
  }
  EXPECT_EQ(report.written.size(), 6u);
  ASSERT_EQ(report.notes.size(), 1u);
  EXPECT_NE(report.notes[0].find("completions/mean_length"), std::string::npos) << report.notes[0];

  DecodedPng png = decode_png(read(out / "reward.png"));
  EXPECT_GT(png.width, 700);
  EXPECT_GT(png.height, 400);
  EXPECT_EQ(png.color_type, 2) << "8-bit RGB";
  EXPECT_EQ(png.pixels.size(), static_cast<size_t>(png.width) * png.height);

  std::string svg = read(out / "reward.svg");
  EXPECT_TRUE(svg.starts_with("<?xml")) << svg.substr(0, 100);
  // One layout for both files: the SVG has the PNG's size.
  EXPECT_NE(
      svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\" "
               "xmlns:xlink=\"http://www.w3.org/1999/xlink\" width=\"" +
               std::to_string(png.width) + "\" height=\"" + std::to_string(png.height) + "\""),
      std::string::npos)
      << svg.substr(0, 300);
  // Each run's curve is a stroke in its colour.
  EXPECT_NE(svg.find(std::string("stroke:") + kSvgBlue), std::string::npos);
  EXPECT_NE(svg.find(std::string("stroke:") + kSvgOrange), std::string::npos);
  // Text is drawn as glyphs: at least the title, the x label and both run names.
  EXPECT_GE(occurrences(svg, "<use xlink:href=\"#glyph"),
            std::string("rewardstepgrpo-smallgrpo-large").size());
  EXPECT_TRUE(svg.ends_with("</svg>\n"));
}

TEST_F(PlotTest, PngShowsEachRunInItsOwnColour) {
  std::vector<RunMetrics> runs = {load_run_metrics(root_ / "grpo-small"),
                                  load_run_metrics(root_ / "grpo-large")};
  DecodedPng png = decode_png(render_png(metric_chart(runs, "reward")));
  int dark_pixels = 0;
  for (const Rgb& p : png.pixels) dark_pixels += p.r < 60 && p.g < 60 && p.b < 60;
  EXPECT_GT(png.count(kBlue), 500);  // the curve, its dots and its legend swatch
  EXPECT_GT(png.count(kOrange), 500);
  EXPECT_GT(dark_pixels, 2000);  // axes, ticks and text
}

TEST_F(PlotTest, EvalKeysStandInForTheirShortNameAndMissingLinesAreSkipped) {
  std::vector<RunMetrics> runs = {load_run_metrics(root_ / "grpo-small" / "metrics.jsonl")};
  EXPECT_EQ(runs[0].name, "grpo-small");
  EXPECT_EQ(resolve_metric(runs, "accuracy"), std::vector<std::string>{"eval/accuracy"});
  EXPECT_EQ(resolve_metric(runs, "reward"), std::vector<std::string>{"reward"});
  EXPECT_TRUE(resolve_metric(runs, "entropy").empty());

  Chart kl = metric_chart(runs, "kl");
  ASSERT_EQ(kl.series.size(), 1u);
  EXPECT_EQ(kl.series[0].x, (std::vector<double>{1, 2, 4, 5, 6, 7, 8, 9, 10}));
  Chart accuracy = metric_chart(runs, "eval/accuracy");
  EXPECT_EQ(accuracy.series[0].x, (std::vector<double>{5, 10}));
  EXPECT_NEAR(accuracy.series[0].y[1], 0.2, 1e-12);
}

TEST_F(PlotTest, ARepeatedStepKeepsItsLastValue) {
  RunMetrics run{"resumed",
                 {{{"step", 1}, {"reward", 0.1}},
                  {{"step", 2}, {"reward", 0.2}},
                  {{"step", 2}, {"reward", 0.25}},
                  {{"step", 3}, {"reward", nullptr}}}};
  Chart chart = metric_chart({run}, "reward");
  ASSERT_EQ(chart.series.size(), 1u);
  EXPECT_EQ(chart.series[0].x, (std::vector<double>{1, 2}));
  EXPECT_EQ(chart.series[0].y, (std::vector<double>{0.1, 0.25}));
}

TEST_F(PlotTest, NoRequestedMetricNamesTheKeysTheRunsHave) {
  try {
    plot_runs({root_ / "grpo-small"}, root_ / "plots", {"entropy"});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kData);
    EXPECT_NE(std::string(e.what()).find("eval/accuracy, kl, reward"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(plot_runs({root_ / "no-such-run"}, root_ / "plots", {"reward"}), Error);
}

TEST(Plot, ASinglePointAndAFlatCurveStillDraw) {
  Chart chart;
  chart.title = "reward";
  chart.series = {{"one-step", {5}, {0.5}}, {"flat", {1, 2, 3}, {1000.0, 1000.0, 1000.0}}};
  // The one point's dot: a blue fill made of curves (cairo draws arcs as Beziers).
  std::string svg = render_svg(chart);
  bool dot = false;
  const std::string blue_fill = std::string("fill:") + kSvgBlue;
  for (size_t at = svg.find(blue_fill); at != std::string::npos; at = svg.find(blue_fill, at + 1)) {
    const std::string element = svg.substr(at, svg.find('\n', at) - at);
    dot = dot || element.find(" C ") != std::string::npos;
  }
  EXPECT_TRUE(dot);
  DecodedPng png = decode_png(render_png(chart));
  EXPECT_GT(png.count(kBlue, 0), 20);  // the one point's dot, and its legend swatch
}

TEST(Plot, FileStemReplacesSlashes) {
  EXPECT_EQ(metric_file_stem("completions/mean_length"), "completions_mean_length");
  EXPECT_EQ(metric_file_stem("eval/pass@k"), "eval_pass@k");
}

}  // namespace
}  // namespace r1kit
