// Reference solution: homework/autoregressive/pixelcnn_mask.cpp.
#include "homework/autoregressive/exercises.h"

namespace hw::autoregressive {

Tensor pixelcnn_mask(int64_t out_c, int64_t in_c, int64_t k, MaskType type, int64_t data_channels) {
  Tensor m = Tensor::zeros({out_c, in_c, k, k});
  float* p = m.data<float>();
  const int64_t c = k / 2;
  auto group = [data_channels](int64_t ch, int64_t total) { return ch * data_channels / total; };
  for (int64_t o = 0; o < out_c; ++o)
    for (int64_t i = 0; i < in_c; ++i)
      for (int64_t y = 0; y < k; ++y)
        for (int64_t x = 0; x < k; ++x) {
          bool keep = y < c || (y == c && x < c);
          if (y == c && x == c)
            keep = type == MaskType::A ? group(i, in_c) < group(o, out_c) : group(i, in_c) <= group(o, out_c);
          p[((o * in_c + i) * k + y) * k + x] = keep ? 1.f : 0.f;
        }
  return m;
}

}  // namespace hw::autoregressive
