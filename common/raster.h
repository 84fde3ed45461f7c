// A small RGB raster for charts: anti-aliased thick lines and dots, filled
// rectangles, text in a built-in 5x7 bitmap font, and PNG encoding (zlib).
// Enough for `r1kit plot` to write PNGs without an imaging library. An Image
// is a plain value; not thread-safe while being drawn on.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace r1kit {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

// Where a text's x lies relative to the string: at its start, middle or end.
enum class TextAnchor { kStart, kMiddle, kEnd };

// Width and capital height in pixels of `text` drawn at `scale` (a glyph is
// 5x7 plus 2 descender rows, advanced by 6 pixels, times scale).
int text_width(std::string_view text, int scale);
inline int text_height(int scale) { return 7 * scale; }

class Image {
 public:
  Image(int width, int height, Rgb background = {255, 255, 255});

  int width() const { return width_; }
  int height() const { return height_; }
  Rgb pixel(int x, int y) const;
  // Row-major RGB bytes, 3 per pixel.
  const std::vector<uint8_t>& data() const { return data_; }

  // Pixel (x, y) covers [x, x+1) x [y, y+1); coordinates below are continuous.
  // Fills the pixels whose centres lie inside [x0, x1) x [y0, y1).
  void fill_rect(double x0, double y0, double x1, double y1, Rgb color);
  // A line of `width` pixels with anti-aliased edges and round caps.
  void draw_line(double x0, double y0, double x1, double y1, double width, Rgb color);
  // A filled, anti-aliased disc.
  void fill_circle(double cx, double cy, double radius, Rgb color);
  // Text whose capitals are centred on y (g j p q y hang 2 rows lower);
  // characters outside printable ASCII draw as '?'.
  void draw_text(double x, double y, std::string_view text, int scale, TextAnchor anchor,
                 Rgb color);

 private:
  // Mixes `color` into pixel (x, y) with `coverage` in [0, 1]; ignores pixels off the image.
  void blend(int x, int y, Rgb color, double coverage);

  int width_;
  int height_;
  std::vector<uint8_t> data_;  // (height, width, 3)
};

// The PNG file (8-bit RGB, no interlace, filter 0 on every row) of `image`.
std::string encode_png(const Image& image);

}  // namespace r1kit
