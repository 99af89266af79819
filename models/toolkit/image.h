// dgm/models/toolkit/image.h — writing pictures (PNG through stb_image_write).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace dgm::image {

// An 8-bit RGB picture, row-major, 3 bytes per pixel.
struct RGB {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;
  RGB(int w, int h, uint8_t fill = 255) : width(w), height(h), pixels(static_cast<size_t>(w) * h * 3, fill) {}
  void set(int x, int y, uint8_t r, uint8_t g, uint8_t b);
  void disc(int cx, int cy, int radius, uint8_t r, uint8_t g, uint8_t b);  // a filled circle
};

// A heat map of values [rows * cols] (row-major, row 0 at the top), each
// value a `cell` x `cell` block, white (0) through blue to near black (the
// largest value, or `vmax` when > 0).
RGB heatmap(const std::vector<double>& values, int rows, int cols, int cell = 1, double vmax = 0);
// Copies `src` into `dst` with its top-left corner at (x0, y0) (clipped).
void paste(RGB& dst, const RGB& src, int x0, int y0);
// Points [n, 2] as dots on a square panel of `size` pixels showing
// [-range, range]^2 (y up), top-left corner at (x0, y0); colours per point
// from `colors` [n, 3] in 0..255, or all (r, g, b) when it is empty.
void scatter(RGB& img, int x0, int y0, int size, double range, const Tensor& points,
             const std::vector<std::array<uint8_t, 3>>& colors, uint8_t r = 40, uint8_t g = 90, uint8_t b = 200);

// Writes a PNG; throws dgm::Error naming the path when it cannot.
void write_png(const std::string& path, const RGB& img);

// A grid of images [N, C, H, W] (C = 1 grey or 3 colour, values in [0, 1],
// clipped): `cols` per row (0: about square), each pixel drawn as an
// `upscale` x `upscale` block, `pad` pixels of grey between images.
RGB image_grid(const Tensor& images, int64_t cols = 0, int upscale = 2, int pad = 2);
// The upscale that makes images of this height readable in a grid: 6 for
// 8x8 digits (48 pixels), 2 for 28x28 images (56 pixels).
inline int upscale_for(int64_t height) { return height <= 8 ? 6 : 2; }
// image_grid + write_png.
void save_image_grid(const std::string& path, const Tensor& images, int64_t cols = 0, int upscale = 2, int pad = 2);

}  // namespace dgm::image
