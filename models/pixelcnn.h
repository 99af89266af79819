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
//
// Class-conditional (classes > 0; docs/chapters/conditional.md): p(x | y) =
// prod_i p(x_i | x_<i, y). Every layer's pre-activation (the first layer's output
// and each block's masked convolution) gets the class's terms added, as in the
// conditional PixelCNN (van den Oord et al. 2016, eq. 4 and 5):
//   location-independent  a learned vector per class and layer, the same at every pixel;
//   location-dependent    (class_maps > 0) a learned map per class, [class_maps, H, W],
//                         through a 1x1 convolution per layer: where the class's pixels are.
// Neither depends on x, so the masks still hide the future. log_prob(x) is then the
// mixture log (1/K) sum_y p(x | y) (K network passes).
#pragma once

#include <vector>

#include "models/density.h"

namespace dgm::models {

// ---------------------------------------------------------------- the masked convolution
// Pixels are ordered in raster order; a kernel position left of or above the
// centre is kept, right of or below it removed. At the centre, channels are
// split into `data_channels` contiguous groups (R, G, B for colour images):
// type A (first layer) lets output group g see input groups < g, type B
// (later layers) groups <= g. With one data channel, type A hides the centre pixel.
enum class MaskType { A, B };
Tensor pixelcnn_mask(int64_t out_channels, int64_t in_channels, int64_t kernel, MaskType type,
                     int64_t data_channels = 1);

class MaskedConv2d : public nn::Module {
 public:
  MaskedConv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, MaskType type, Generator& gen,
               int64_t data_channels = 1, bool bias = true);
  // With one data channel the mask is the same for every channel pair, so the
  // convolution is the engine's masked_conv2d over the kept kernel positions
  // only (5 of 9 for a 3x3 type-B kernel): conv2d(x, weight * mask), fewer FLOPs.
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias, mask;

 private:
  Tensor kernel_mask_;  // [k, k] when the mask is the same for every channel pair, else undefined
};

// ---------------------------------------------------------------- the model

class PixelCNN : public TrainableDensity, public ConditionalDensity {
 public:
  // Images of height x width (the network is convolutional; the size is what sample() draws).
  PixelCNN(int64_t levels, int64_t channels, int64_t blocks, int64_t height, int64_t width, Generator& gen,
           bool gated = false, int64_t classes = 0, int64_t class_maps = 0);

  // x [N, 1, H, W] in [0, 1]. Logits [N, 1, H, W] (levels 2) or [N, levels, H, W].
  // y: the labels (int64 [N]) of a class-conditional model, undefined for an unconditional one.
  Tensor logits(const Tensor& x, const Tensor& y = Tensor());
  std::string name() const override { return "pixelcnn"; }
  // {"levels", "channels", "blocks", "height", "width", "gated", and a conditional model's "classes", "class_maps"}
  std::string config_json() const override;
  // [N], nats: one network pass (a conditional model: the uniform mixture over the classes, K passes)
  Tensor log_prob(const Tensor& x) override;
  std::string log_prob_kind() const override { return classes_ > 0 ? "exact, log (1/K) sum_y p(x | y)" : "exact"; }
  // The conditional model (classes > 0; an unconditional one throws):
  int64_t classes() const override { return classes_; }
  Tensor log_prob_given(const Tensor& x, const Tensor& y) override;  // [N], one pass
  Tensor sample_given(const Tensor& y, Generator& gen) override;     // [N, 1, H, W], H*W passes
  // n samples [n, 1, H, W]: H*W network passes, pixel by pixel in raster order.
  Tensor sample(int64_t n, Generator& gen) override;
  // A completion: the first `known_rows` rows of `observed` [n, 1, H, W] kept, the rest sampled
  // (given the labels y of a conditional model).
  Tensor complete(const Tensor& observed, int64_t known_rows, Generator& gen, const Tensor& y = Tensor());
  int64_t levels() const { return levels_; }
  int64_t passes = 0;

 private:
  int64_t levels_, height_, width_, channels_, blocks_count_, classes_, class_maps_;
  bool gated_;
  std::vector<Tensor> class_vectors_;  // per layer: [classes, its width] (conditional models)
  Tensor maps_;                        // [classes, class_maps, H, W] (location-dependent conditioning)
  std::vector<Tensor> map_weights_;    // per layer: the 1x1 convolution [its width, class_maps, 1, 1]
  std::shared_ptr<MaskedConv2d> input_;
  std::vector<std::shared_ptr<MaskedConv2d>> blocks_;
  std::vector<std::shared_ptr<nn::Conv2d>> gate_out_;
  std::shared_ptr<nn::Conv2d> output_;
};

}  // namespace dgm::models
