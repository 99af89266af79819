// dgm/models/image.cpp
#include "models/image.h"

#include <stb_image_write.h>

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

}  // namespace dgm::image
