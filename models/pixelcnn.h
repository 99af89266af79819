// dgm/models/pixelcnn.h — PixelCNN (van den Oord, Kalchbrenner, Kavukcuoglu 2016).
//
// The chain rule over pixels in raster order, p(x) = prod_i p(x_i | x_<i),
// computed for all pixels in ONE pass of a convolutional network whose
// kernels are masked (docs/chapters/autoregressive.md, eq. 5):
//   a type-A 7x7 masked convolution (the centre pixel itself hidden),
//   residual blocks h <- h + MaskedConvB_3x3(relu(h))            (plain), or
//                   h <- h + Conv_1x1(tanh(a) * sigmoid(b)),
//                        [a, b] = MaskedConvB_3x3(relu(h))         (gated),
//   then relu and a 1x1 convolution to the logits of each pixel.
// Grey images [N, 1, H, W]: one Bernoulli logit per pixel (levels = 2) or
// `levels` categorical logits per pixel.
#pragma once

#include <vector>

#include "autograd/nn.h"

namespace dgm::models {

class PixelCNN : public nn::Module {
 public:
  PixelCNN(int64_t levels, int64_t channels, int64_t blocks, Generator& gen, bool gated = false);

  // x [N, 1, H, W] in [0, 1]. Logits [N, 1, H, W] (levels 2) or [N, levels, H, W].
  Tensor logits(const Tensor& x);
  Tensor log_prob(const Tensor& x);  // [N], nats: one network pass
  // n samples of H x W: H*W network passes, pixel by pixel in raster order.
  // With `observed` [n, 1, H, W], the first `known_rows` rows are kept (a completion).
  Tensor sample(int64_t n, int64_t height, int64_t width, Generator& gen, const Tensor& observed = Tensor(),
                int64_t known_rows = 0);
  int64_t levels() const { return levels_; }
  int64_t passes = 0;

 private:
  int64_t levels_;
  bool gated_;
  std::shared_ptr<nn::MaskedConv2d> input_;
  std::vector<std::shared_ptr<nn::MaskedConv2d>> blocks_;
  std::vector<std::shared_ptr<nn::Conv2d>> gate_out_;
  std::shared_ptr<nn::Conv2d> output_;
};

}  // namespace dgm::models
