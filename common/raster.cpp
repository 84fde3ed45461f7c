#include "common/raster.h"

#include <c10/util/Exception.h>
#include <zlib.h>

#include <array>
#include <cmath>

#include "common/error.h"

namespace r1kit {

namespace {

constexpr int kGlyphWidth = 5;
constexpr int kGlyphHeight = 7;     // rows above the baseline, the text height
constexpr int kGlyphDescender = 2;  // rows below it, used by g j p q y
constexpr int kGlyphAdvance = 6;
constexpr char kFirstGlyph = ' ';
constexpr char kLastGlyph = '~';

// Printable ASCII in a 5x7 cell, drawn after the HD44780 character ROM: seven
// rows top to bottom, '1' = ink, and two more below the baseline for the
// letters that descend. Index = character - ' '.
constexpr std::array<std::string_view, 95> kFont5x7 = {
    "00000 00000 00000 00000 00000 00000 00000",              // ' '
    "00100 00100 00100 00100 00100 00000 00100",              // !
    "01010 01010 01010 00000 00000 00000 00000",              // "
    "01010 01010 11111 01010 11111 01010 01010",              // #
    "00100 01111 10100 01110 00101 11110 00100",              // $
    "11000 11001 00010 00100 01000 10011 00011",              // %
    "01100 10010 10100 01000 10101 10010 01101",              // &
    "01100 00100 01000 00000 00000 00000 00000",              // '
    "00010 00100 01000 01000 01000 00100 00010",              // (
    "01000 00100 00010 00010 00010 00100 01000",              // )
    "00000 00100 10101 01110 10101 00100 00000",              // *
    "00000 00100 00100 11111 00100 00100 00000",              // +
    "00000 00000 00000 00000 01100 00100 01000",              // ,
    "00000 00000 00000 11111 00000 00000 00000",              // -
    "00000 00000 00000 00000 00000 01100 01100",              // .
    "00000 00001 00010 00100 01000 10000 00000",              // /
    "01110 10001 10011 10101 11001 10001 01110",              // 0
    "00100 01100 00100 00100 00100 00100 01110",              // 1
    "01110 10001 00001 00010 00100 01000 11111",              // 2
    "11111 00010 00100 00010 00001 10001 01110",              // 3
    "00010 00110 01010 10010 11111 00010 00010",              // 4
    "11111 10000 11110 00001 00001 10001 01110",              // 5
    "00110 01000 10000 11110 10001 10001 01110",              // 6
    "11111 00001 00010 00100 01000 01000 01000",              // 7
    "01110 10001 10001 01110 10001 10001 01110",              // 8
    "01110 10001 10001 01111 00001 00010 01100",              // 9
    "00000 01100 01100 00000 01100 01100 00000",              // :
    "00000 01100 01100 00000 01100 00100 01000",              // ;
    "00010 00100 01000 10000 01000 00100 00010",              // <
    "00000 00000 11111 00000 11111 00000 00000",              // =
    "01000 00100 00010 00001 00010 00100 01000",              // >
    "01110 10001 00001 00010 00100 00000 00100",              // ?
    "01110 10001 00001 01101 10101 10101 01110",              // @
    "01110 10001 10001 10001 11111 10001 10001",              // A
    "11110 10001 10001 11110 10001 10001 11110",              // B
    "01110 10001 10000 10000 10000 10001 01110",              // C
    "11100 10010 10001 10001 10001 10010 11100",              // D
    "11111 10000 10000 11110 10000 10000 11111",              // E
    "11111 10000 10000 11110 10000 10000 10000",              // F
    "01110 10001 10000 10111 10001 10001 01111",              // G
    "10001 10001 10001 11111 10001 10001 10001",              // H
    "01110 00100 00100 00100 00100 00100 01110",              // I
    "00111 00010 00010 00010 00010 10010 01100",              // J
    "10001 10010 10100 11000 10100 10010 10001",              // K
    "10000 10000 10000 10000 10000 10000 11111",              // L
    "10001 11011 10101 10101 10001 10001 10001",              // M
    "10001 10001 11001 10101 10011 10001 10001",              // N
    "01110 10001 10001 10001 10001 10001 01110",              // O
    "11110 10001 10001 11110 10000 10000 10000",              // P
    "01110 10001 10001 10001 10101 10010 01101",              // Q
    "11110 10001 10001 11110 10100 10010 10001",              // R
    "01111 10000 10000 01110 00001 00001 11110",              // S
    "11111 00100 00100 00100 00100 00100 00100",              // T
    "10001 10001 10001 10001 10001 10001 01110",              // U
    "10001 10001 10001 10001 10001 01010 00100",              // V
    "10001 10001 10001 10101 10101 10101 01010",              // W
    "10001 10001 01010 00100 01010 10001 10001",              // X
    "10001 10001 10001 01010 00100 00100 00100",              // Y
    "11111 00001 00010 00100 01000 10000 11111",              // Z
    "01110 01000 01000 01000 01000 01000 01110",              // [
    "00000 10000 01000 00100 00010 00001 00000",              // backslash
    "01110 00010 00010 00010 00010 00010 01110",              // ]
    "00100 01010 10001 00000 00000 00000 00000",              // ^
    "00000 00000 00000 00000 00000 00000 11111",              // _
    "01000 00100 00010 00000 00000 00000 00000",              // `
    "00000 00000 01110 00001 01111 10001 01111",              // a
    "10000 10000 10110 11001 10001 10001 11110",              // b
    "00000 00000 01110 10000 10000 10001 01110",              // c
    "00001 00001 01101 10011 10001 10001 01111",              // d
    "00000 00000 01110 10001 11111 10000 01110",              // e
    "00110 01001 01000 11100 01000 01000 01000",              // f
    "00000 00000 01111 10001 10001 10001 01111 00001 01110",  // g
    "10000 10000 10110 11001 10001 10001 10001",              // h
    "00100 00000 01100 00100 00100 00100 01110",              // i
    "00010 00000 00110 00010 00010 00010 00010 10010 01100",  // j
    "10000 10000 10010 10100 11000 10100 10010",              // k
    "01100 00100 00100 00100 00100 00100 01110",              // l
    "00000 00000 11010 10101 10101 10001 10001",              // m
    "00000 00000 10110 11001 10001 10001 10001",              // n
    "00000 00000 01110 10001 10001 10001 01110",              // o
    "00000 00000 11110 10001 10001 10001 11110 10000 10000",  // p
    "00000 00000 01111 10001 10001 10001 01111 00001 00001",  // q
    "00000 00000 10110 11001 10000 10000 10000",              // r
    "00000 00000 01110 10000 01110 00001 11110",              // s
    "01000 01000 11100 01000 01000 01001 00110",              // t
    "00000 00000 10001 10001 10001 10011 01101",              // u
    "00000 00000 10001 10001 10001 01010 00100",              // v
    "00000 00000 10001 10001 10101 10101 01010",              // w
    "00000 00000 10001 01010 00100 01010 10001",              // x
    "00000 00000 10001 10001 10001 10001 01111 00001 01110",  // y
    "00000 00000 11111 00010 00100 01000 11111",              // z
    "00010 00100 00100 01000 00100 00100 00010",              // {
    "00100 00100 00100 00100 00100 00100 00100",              // |
    "01000 00100 00100 00010 00100 00100 01000",              // }
    "00000 00000 01000 10101 00010 00000 00000",              // ~
};

bool glyph_ink(char c, int column, int row) {
  if (c < kFirstGlyph || c > kLastGlyph) c = '?';
  std::string_view rows = kFont5x7[c - kFirstGlyph];
  size_t at = static_cast<size_t>(row) * (kGlyphWidth + 1) + column;
  return at < rows.size() && rows[at] == '1';
}

double clamp01(double value) { return std::min(1.0, std::max(0.0, value)); }

void put_big_endian32(std::string& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((value >> shift) & 0xFF));
}

// One PNG chunk: length, type, data, CRC-32 of type and data.
void put_chunk(std::string& out, const char* type, std::string_view data) {
  put_big_endian32(out, static_cast<uint32_t>(data.size()));
  std::string body = std::string(type, 4) + std::string(data);
  out += body;
  put_big_endian32(
      out, crc32(0L, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size())));
}

}  // namespace

int text_width(std::string_view text, int scale) {
  if (text.empty()) return 0;
  return (static_cast<int>(text.size()) * kGlyphAdvance - 1) * scale;
}

Image::Image(int width, int height, Rgb background) : width_(width), height_(height) {
  TORCH_CHECK(width > 0 && height > 0, "Image: bad size ", width, "x", height);
  data_.resize(static_cast<size_t>(width) * height * 3);
  for (size_t i = 0; i < data_.size(); i += 3) {
    data_[i] = background.r;
    data_[i + 1] = background.g;
    data_[i + 2] = background.b;
  }
}

Rgb Image::pixel(int x, int y) const {
  TORCH_CHECK(x >= 0 && x < width_ && y >= 0 && y < height_, "Image::pixel(", x, ", ", y,
              ") outside ", width_, "x", height_);
  const uint8_t* p = &data_[(static_cast<size_t>(y) * width_ + x) * 3];
  return {p[0], p[1], p[2]};
}

void Image::blend(int x, int y, Rgb color, double coverage) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_ || coverage <= 0) return;
  uint8_t* p = &data_[(static_cast<size_t>(y) * width_ + x) * 3];
  auto mix = [coverage](uint8_t under, uint8_t over) {
    return static_cast<uint8_t>(std::lround(under + (over - under) * std::min(coverage, 1.0)));
  };
  p[0] = mix(p[0], color.r);
  p[1] = mix(p[1], color.g);
  p[2] = mix(p[2], color.b);
}

void Image::fill_rect(double x0, double y0, double x1, double y1, Rgb color) {
  int first_x = static_cast<int>(std::ceil(std::min(x0, x1) - 0.5));
  int last_x = static_cast<int>(std::ceil(std::max(x0, x1) - 0.5));
  int first_y = static_cast<int>(std::ceil(std::min(y0, y1) - 0.5));
  int last_y = static_cast<int>(std::ceil(std::max(y0, y1) - 0.5));
  for (int y = std::max(first_y, 0); y < std::min(last_y, height_); ++y) {
    for (int x = std::max(first_x, 0); x < std::min(last_x, width_); ++x) blend(x, y, color, 1.0);
  }
}

void Image::draw_line(double x0, double y0, double x1, double y1, double width, Rgb color) {
  // Coverage of each pixel centre from its distance to the segment: full
  // inside width/2, fading to zero over one pixel.
  double half = width / 2;
  int min_x = static_cast<int>(std::floor(std::min(x0, x1) - half - 1));
  int max_x = static_cast<int>(std::ceil(std::max(x0, x1) + half + 1));
  int min_y = static_cast<int>(std::floor(std::min(y0, y1) - half - 1));
  int max_y = static_cast<int>(std::ceil(std::max(y0, y1) + half + 1));
  double dx = x1 - x0, dy = y1 - y0;
  double length_squared = dx * dx + dy * dy;
  for (int y = std::max(min_y, 0); y <= std::min(max_y, height_ - 1); ++y) {
    for (int x = std::max(min_x, 0); x <= std::min(max_x, width_ - 1); ++x) {
      double px = x + 0.5 - x0, py = y + 0.5 - y0;
      double t = length_squared > 0 ? clamp01((px * dx + py * dy) / length_squared) : 0.0;
      double distance = std::hypot(px - t * dx, py - t * dy);
      blend(x, y, color, clamp01(half + 0.5 - distance));
    }
  }
}

void Image::fill_circle(double cx, double cy, double radius, Rgb color) {
  draw_line(cx, cy, cx, cy, 2 * radius, color);
}

void Image::draw_text(double x, double y, std::string_view text, int scale, TextAnchor anchor,
                      Rgb color) {
  int width = text_width(text, scale);
  double left = anchor == TextAnchor::kStart    ? x
                : anchor == TextAnchor::kMiddle ? x - width / 2.0
                                                : x - width;
  int origin_x = static_cast<int>(std::lround(left));
  int origin_y = static_cast<int>(std::lround(y - text_height(scale) / 2.0));
  for (size_t i = 0; i < text.size(); ++i) {
    int cell_x = origin_x + static_cast<int>(i) * kGlyphAdvance * scale;
    for (int row = 0; row < kGlyphHeight + kGlyphDescender; ++row) {
      for (int column = 0; column < kGlyphWidth; ++column) {
        if (!glyph_ink(text[i], column, row)) continue;
        fill_rect(cell_x + column * scale, origin_y + row * scale, cell_x + (column + 1) * scale,
                  origin_y + (row + 1) * scale, color);
      }
    }
  }
}

std::string encode_png(const Image& image) {
  // Each row is prefixed with its filter type, 0 (none).
  size_t row_bytes = static_cast<size_t>(image.width()) * 3;
  std::string raw;
  raw.reserve((row_bytes + 1) * image.height());
  for (int y = 0; y < image.height(); ++y) {
    raw.push_back('\0');
    raw.append(reinterpret_cast<const char*>(image.data().data()) + y * row_bytes, row_bytes);
  }
  uLongf compressed_size = compressBound(static_cast<uLong>(raw.size()));
  std::string compressed(compressed_size, '\0');
  int status = compress2(reinterpret_cast<Bytef*>(compressed.data()), &compressed_size,
                         reinterpret_cast<const Bytef*>(raw.data()), static_cast<uLong>(raw.size()),
                         Z_BEST_COMPRESSION);
  if (status != Z_OK)
    throw Error("encode_png: zlib compress2 failed with status " + std::to_string(status));
  compressed.resize(compressed_size);

  std::string header;
  put_big_endian32(header, static_cast<uint32_t>(image.width()));
  put_big_endian32(header, static_cast<uint32_t>(image.height()));
  header += std::string("\x08\x02\x00\x00\x00",
                        5);  // bit depth 8, colour type 2 (RGB), deflate, filter 0, no interlace

  std::string png = "\x89PNG\r\n\x1a\n";
  put_chunk(png, "IHDR", header);
  put_chunk(png, "IDAT", compressed);
  put_chunk(png, "IEND", "");
  return png;
}

}  // namespace r1kit
