// dgm/models/unet.h — the noise predictors eps_theta(x_t, t) a DDPM trains.
//
// Both take the noisy input x_t and the step t (int64 [N], index 0..T-1) and
// return a prediction of the noise with x_t's shape:
//   MLPNoisePredictor  vectors [N, D]: an MLP on [x_t, embedding(t)] (2-D toys, flattened digits)
//   UNet               images [N, C, H, W]: the DDPM U-Net (Ho et al. 2020, after PixelCNN++),
//                      small enough for 8x8 digits and 28x28 Fashion-MNIST on a CPU.
//
// The U-Net, top to bottom (widths for base = 32, multipliers {1, 2, 2}, 28x28):
//
//   t -> sinusoid(base) -> Linear -> SiLU -> Linear = emb (4 base wide)
//   x [C,28,28] -> conv3x3 -> h [32,28,28]
//   level 0: ResBlock(32 -> 32, emb) ... -> skip_0, downsample (conv3x3 stride 2) -> [32,14,14]
//   level 1: ResBlock(32 -> 64, emb) ... -> skip_1, downsample -> [64,7,7]
//   level 2: ResBlock(64 -> 64, emb) ... -> skip_2
//   middle:  ResBlock, self-attention over the 7x7 positions (optional), ResBlock
//   level 2 up: concat skip_2 -> ResBlock(128 -> 64) ..., upsample (nearest x2, conv3x3) -> [64,14,14]
//   level 1 up: concat skip_1 -> ResBlock(128 -> 64) ..., upsample -> [64,28,28]
//   level 0 up: concat skip_0 -> ResBlock(96 -> 32) ...
//   GroupNorm -> SiLU -> conv3x3 -> eps [C,28,28]   (zero-initialised: the untrained net predicts 0)
//
//   ResBlock(x, emb) = skip(x) + conv(SiLU(GN(conv(SiLU(GN(x))) + Linear(SiLU(emb)))))
//   skip: identity, or a 1x1 conv when the widths differ; the second conv starts at zero,
//   so every block starts as the identity (as in the paper's code).
#pragma once

#include <memory>
#include <vector>

#include "autograd/nn.h"

namespace dgm::models {

// The sinusoidal embedding of the step (as in the Transformer and DDPM):
// row n is [sin(t_n f_0), ..., sin(t_n f_{h-1}), cos(t_n f_0), ..., cos(t_n f_{h-1})],
// f_i = 10000^(-i / h), h = dim / 2. t: int64 [N] -> [N, dim].
Tensor timestep_embedding(const Tensor& t, int64_t dim, DType dtype = DType::Float32);


// eps_theta(x_t, t), or eps_theta(x_t, t, y) given class labels: what a DDPM trains. Output: x_t's shape.
//
// Class-conditional (classes > 0, docs/chapters/conditional.md): a learned vector per class, and
// one more for "no label" (y = classes, what classifier-free guidance's unconditional half sees),
// added to the step's embedding. The vectors start at 0: every label starts as the same network.
class NoisePredictor : public nn::Module {
 public:
  // t: int64 [N], 0..T-1; y: int64 [N], 0..classes (classes: no label), only for a conditional predictor
  virtual Tensor predict(const Tensor& x_t, const Tensor& t, const Tensor& y = Tensor()) = 0;
  virtual std::string config_json() const = 0;  // its constructor's arguments, with "kind" (and "classes")
  int64_t classes() const { return classes_; }

 protected:
  // Registers the table [classes + 1, width] (classes > 0).
  void add_class_vectors(int64_t classes, int64_t width);
  // emb [N, width] + the table's rows y (a conditional predictor needs y; an unconditional one refuses it).
  Tensor with_class(const Tensor& emb, const Tensor& y, const std::string& who) const;
  int64_t classes_ = 0;
  Tensor class_vectors_;
};

// An MLP with SiLU on [x_t, timestep_embedding(t, embedding)], x_t: [N, dims].
class MLPNoisePredictor : public NoisePredictor {
 public:
  MLPNoisePredictor(int64_t dims, const std::vector<int64_t>& hidden, Generator& gen, int64_t embedding = 32, int64_t classes = 0);
  Tensor predict(const Tensor& x_t, const Tensor& t, const Tensor& y = Tensor()) override;
  std::string config_json() const override;  // {"kind": "mlp", "dims", "hidden", "embedding"} (and "classes" when > 0)

 private:
  int64_t dims_, embedding_;
  std::vector<int64_t> hidden_;
  std::shared_ptr<nn::Sequential> net_;
};

struct UNetOptions {
  int64_t channels = 1;                     // image channels C
  int64_t base = 32;                        // width of the first level
  std::vector<int64_t> multipliers{1, 2, 2};  // width of level l = base * multipliers[l]; one halving between levels
  int64_t blocks = 1;                       // residual blocks per level (down and up)
  int64_t groups = 8;                       // GroupNorm groups (must divide every width)
  bool attention = true;                    // self-attention in the middle (lowest resolution)
  int64_t classes = 0;                      // > 0: class-conditional (a class vector added to the step's embedding)
};

// One residual block with the time embedding added between its two convolutions.
class ResBlock : public nn::Module {
 public:
  ResBlock(int64_t in, int64_t out, int64_t emb_dim, int64_t groups, Generator& gen);
  Tensor forward(const Tensor& x, const Tensor& emb);

 private:
  std::shared_ptr<nn::GroupNorm> norm1_, norm2_;
  std::shared_ptr<nn::Conv2d> conv1_, conv2_, skip_;
  std::shared_ptr<nn::Linear> emb_proj_;
};

// Single-head self-attention over the H*W positions, a residual branch:
//   x + proj(softmax(q^T k / sqrt(C)) v), q, k, v = 1x1 convs of GroupNorm(x).
class SelfAttention2d : public nn::Module {
 public:
  SelfAttention2d(int64_t channels, int64_t groups, Generator& gen);
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<nn::GroupNorm> norm_;
  std::shared_ptr<nn::Conv2d> qkv_, proj_;
};

class UNet : public NoisePredictor {
 public:
  UNet(const UNetOptions& options, Generator& gen);
  Tensor predict(const Tensor& x_t, const Tensor& t, const Tensor& y = Tensor()) override;
  std::string config_json() const override;  // {"kind": "unet", and UNetOptions' fields}
  const UNetOptions& options() const { return options_; }

 private:
  UNetOptions options_;
  std::shared_ptr<nn::Linear> emb1_, emb2_;
  std::shared_ptr<nn::Conv2d> conv_in_, conv_out_;
  std::vector<std::vector<std::shared_ptr<ResBlock>>> down_, up_;  // [level][block]
  std::vector<std::shared_ptr<nn::Conv2d>> downsample_, upsample_;  // between levels
  std::shared_ptr<ResBlock> mid1_, mid2_;
  std::shared_ptr<SelfAttention2d> attention_;
  std::shared_ptr<nn::GroupNorm> norm_out_;
};

}  // namespace dgm::models
