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
