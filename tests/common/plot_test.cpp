// `r1kit plot`'s library: two runs overlaid into SVG and PNG files that are
// well formed (PNG signature, IHDR, a zlib stream of the right size), missing
// metrics are skipped with a note, and the raster draws what the chart says.
#include "common/plot.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

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

uint32_t big_endian32(const std::string& bytes, size_t at) {
  uint32_t value = 0;
  for (size_t i = 0; i < 4; ++i) value = (value << 8) | static_cast<unsigned char>(bytes[at + i]);
  return value;
}

struct DecodedPng {
  uint32_t width = 0, height = 0;
  int channels = 0;
  std::string pixels;  // inflated IDAT: one filter byte then the row, per row
};

DecodedPng decode_png(const std::string& png) {
  DecodedPng decoded;
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  std::string idat;
  bool ended = false;
  for (size_t at = 8; at + 12 <= png.size();) {
    uint32_t length = big_endian32(png, at);
    std::string type = png.substr(at + 4, 4);
    std::string data = png.substr(at + 8, length);
    uint32_t crc = ::crc32(0L, reinterpret_cast<const Bytef*>(png.data() + at + 4), length + 4);
    EXPECT_EQ(big_endian32(png, at + 8 + length), crc) << type;
    if (type == "IHDR") {
      decoded.width = big_endian32(data, 0);
      decoded.height = big_endian32(data, 4);
      EXPECT_EQ(data[8], 8) << "bit depth";
      decoded.channels = data[9] == 2 ? 3 : data[9] == 6 ? 4 : 0;
    } else if (type == "IDAT") {
      idat += data;
    } else if (type == "IEND") {
      ended = true;
    }
    at += 12 + length;
  }
  EXPECT_TRUE(ended);
  decoded.pixels.resize(
      static_cast<size_t>(decoded.height) * (1 + decoded.width * decoded.channels) + 1);
  uLongf size = decoded.pixels.size();
  EXPECT_EQ(uncompress(reinterpret_cast<Bytef*>(decoded.pixels.data()), &size,
                       reinterpret_cast<const Bytef*>(idat.data()), idat.size()),
            Z_OK);
  decoded.pixels.resize(size);
  return decoded;
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

  std::string svg = read(out / "reward.svg");
  EXPECT_TRUE(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
  EXPECT_NE(svg.find(">grpo-small</text>"), std::string::npos);
  EXPECT_NE(svg.find(">grpo-large</text>"), std::string::npos);
  EXPECT_NE(svg.find("<polyline"), std::string::npos);
  EXPECT_NE(svg.find(">step</text>"), std::string::npos);
  EXPECT_TRUE(svg.ends_with("</svg>\n"));

  DecodedPng png = decode_png(read(out / "reward.png"));
  EXPECT_GT(png.width, 700u);
  EXPECT_GT(png.height, 400u);
  EXPECT_EQ(png.channels, 3);
  ASSERT_EQ(png.pixels.size(), static_cast<size_t>(png.height) * (1 + png.width * png.channels));
  for (uint32_t row = 0; row < png.height; ++row)
    EXPECT_EQ(png.pixels[row * (1 + png.width * 3)], 0) << row;
}

TEST_F(PlotTest, RasterShowsEachRunInItsOwnColour) {
  std::vector<RunMetrics> runs = {load_run_metrics(root_ / "grpo-small"),
                                  load_run_metrics(root_ / "grpo-large")};
  Image image = render_image(metric_chart(runs, "reward"));
  // tab10's first two colours, as the curves and legend swatches are drawn.
  const Rgb blue = {31, 119, 180}, orange = {255, 127, 14};
  int blue_pixels = 0, orange_pixels = 0, dark_pixels = 0;
  for (int y = 0; y < image.height(); ++y) {
    for (int x = 0; x < image.width(); ++x) {
      Rgb p = image.pixel(x, y);
      blue_pixels += p == blue;
      orange_pixels += p == orange;
      dark_pixels += p.r < 60 && p.g < 60 && p.b < 60;
    }
  }
  EXPECT_GT(blue_pixels, 500);
  EXPECT_GT(orange_pixels, 500);
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
  std::string svg = render_svg(chart);
  EXPECT_NE(svg.find("<circle"), std::string::npos);
  Image image = render_image(chart);
  int blue_pixels = 0;
  for (int y = 0; y < image.height(); ++y) {
    for (int x = 0; x < image.width(); ++x) blue_pixels += image.pixel(x, y) == Rgb{31, 119, 180};
  }
  EXPECT_GT(blue_pixels, 20);  // the one point's dot, and its legend swatch
}

TEST(Plot, FileStemReplacesSlashes) {
  EXPECT_EQ(metric_file_stem("completions/mean_length"), "completions_mean_length");
  EXPECT_EQ(metric_file_stem("eval/pass@k"), "eval_pass@k");
}

TEST(Raster, DrawsGlyphsOfTheBitmapFont) {
  EXPECT_EQ(text_width("ab", 1), 11);
  EXPECT_EQ(text_width("ab", 2), 22);
  Image image(20, 12);
  const Rgb black = {0, 0, 0}, white = {255, 255, 255};
  image.draw_text(2, 6.5, "L", 1, TextAnchor::kStart, black);  // 7 rows centred on 6.5: rows 3..9
  for (int row = 3; row <= 9; ++row) EXPECT_EQ(image.pixel(2, row), black) << row;  // L's stem
  for (int x = 2; x <= 6; ++x) EXPECT_EQ(image.pixel(x, 9), black) << x;            // L's foot
  EXPECT_EQ(image.pixel(3, 3), white);
  EXPECT_EQ(image.pixel(2, 2), white);
  EXPECT_EQ(image.pixel(2, 10), white);
}

}  // namespace
}  // namespace r1kit
