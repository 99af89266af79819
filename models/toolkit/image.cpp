// dgm/models/toolkit/image.cpp
#include "models/toolkit/image.h"

#include <stb_image_write.h>

#include <algorithm>
#include <cmath>

#include "autograd/tensor.h"

namespace dgm::image {

void RGB::set(int x, int y, uint8_t r, uint8_t g, uint8_t b) {
  if (x < 0 || y < 0 || x >= width || y >= height) return;
  uint8_t* p = &pixels[(static_cast<size_t>(y) * width + x) * 3];
  p[0] = r, p[1] = g, p[2] = b;
}

void RGB::disc(int cx, int cy, int radius, uint8_t r, uint8_t g, uint8_t b) {
  for (int dy = -radius; dy <= radius; ++dy)
    for (int dx = -radius; dx <= radius; ++dx)
      if (dx * dx + dy * dy <= radius * radius) set(cx + dx, cy + dy, r, g, b);
}

RGB heatmap(const std::vector<double>& v, int rows, int cols, int cell, double vmax) {
  if (static_cast<int64_t>(v.size()) != static_cast<int64_t>(rows) * cols)
    throw Error("heatmap: " + std::to_string(v.size()) + " values for a " + std::to_string(rows) + " x " + std::to_string(cols) + " map");
  double top = vmax;
  if (top <= 0)
    for (double x : v) top = std::max(top, x);
  RGB img(cols * cell, rows * cell);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) {
      const double t = top > 0 ? std::clamp(v[static_cast<size_t>(i) * cols + j] / top, 0.0, 1.0) : 0.0;
      // white -> (50, 110, 200) blue at t = 0.6 -> (10, 20, 60) at t = 1
      const double a = std::min(t / 0.6, 1.0), b = std::max((t - 0.6) / 0.4, 0.0);
      const auto mix = [&](double blue, double dark) { return static_cast<uint8_t>((255 + (blue - 255) * a) * (1 - b) + dark * b); };
      const uint8_t r = mix(50, 10), g = mix(110, 20), bl = mix(200, 60);
      for (int dy = 0; dy < cell; ++dy)
        for (int dx = 0; dx < cell; ++dx) img.set(j * cell + dx, i * cell + dy, r, g, bl);
    }
  return img;
}

void paste(RGB& dst, const RGB& src, int x0, int y0) {
  for (int y = 0; y < src.height; ++y)
    for (int x = 0; x < src.width; ++x) {
      const uint8_t* p = &src.pixels[(static_cast<size_t>(y) * src.width + x) * 3];
      dst.set(x0 + x, y0 + y, p[0], p[1], p[2]);
    }
}

void scatter(RGB& img, int x0, int y0, int size, double range, const Tensor& points,
             const std::vector<std::array<uint8_t, 3>>& colors, uint8_t r, uint8_t g, uint8_t b) {
  if (points.dim() != 2 || points.size(1) != 2) throw Error("scatter: expects points [n, 2], got " + points.shape().str());
  const std::vector<double> p = points.to_vector();
  for (int64_t i = 0; i < points.size(0); ++i) {
    const double px = p[static_cast<size_t>(2 * i)], py = p[static_cast<size_t>(2 * i + 1)];
    if (std::abs(px) > range || std::abs(py) > range) continue;
    const int x = x0 + static_cast<int>((px + range) / (2 * range) * (size - 1));
    const int y = y0 + static_cast<int>((range - py) / (2 * range) * (size - 1));
    const auto& c = colors.empty() ? std::array<uint8_t, 3>{r, g, b} : colors[static_cast<size_t>(i)];
    img.disc(x, y, 1, c[0], c[1], c[2]);
  }
}

void write_png(const std::string& path, const RGB& img) {
  if (!stbi_write_png(path.c_str(), img.width, img.height, 3, img.pixels.data(), img.width * 3))
    throw Error("write_png: cannot write '" + path + "'");
}

RGB image_grid(const Tensor& images, int64_t cols, int upscale, int pad) {
  if (images.dim() != 4 || (images.size(1) != 1 && images.size(1) != 3))
    throw Error("image_grid: expects images [N, 1 or 3, H, W], got " + images.shape().str());
  if (upscale < 1 || pad < 0) throw Error("image_grid: upscale must be >= 1 and pad >= 0");
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  if (n == 0) throw Error("image_grid: no images");
  if (cols <= 0) cols = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(n))));
  const int64_t rows = (n + cols - 1) / cols;
  const int cell_w = static_cast<int>(w) * upscale, cell_h = static_cast<int>(h) * upscale;
  RGB img(static_cast<int>(cols) * (cell_w + pad) + pad, static_cast<int>(rows) * (cell_h + pad) + pad, 128);
  for (int64_t k = 0; k < n; ++k) {
    const int x0 = pad + static_cast<int>(k % cols) * (cell_w + pad), y0 = pad + static_cast<int>(k / cols) * (cell_h + pad);
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        uint8_t rgb[3];
        for (int ch = 0; ch < 3; ++ch) {
          const double v = images.at(((k * c + (c == 3 ? ch : 0)) * h + y) * w + x);
          rgb[ch] = static_cast<uint8_t>(std::lround(255.0 * std::clamp(v, 0.0, 1.0)));
        }
        for (int dy = 0; dy < upscale; ++dy)
          for (int dx = 0; dx < upscale; ++dx)
            img.set(x0 + static_cast<int>(x) * upscale + dx, y0 + static_cast<int>(y) * upscale + dy, rgb[0], rgb[1], rgb[2]);
      }
  }
  return img;
}

void save_image_grid(const std::string& path, const Tensor& images, int64_t cols, int upscale, int pad) {
  write_png(path, image_grid(images, cols, upscale, pad));
}

}  // namespace dgm::image
