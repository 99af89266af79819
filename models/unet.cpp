// dgm/models/unet.cpp
#include "models/unet.h"

#include "models/conditional.h"

#include <cmath>
#include <string>
#include <nlohmann/json.hpp>


namespace dgm::models {

Tensor timestep_embedding(const Tensor& t, int64_t dim, DType dtype) {
  if (dim < 2 || dim % 2) throw Error("timestep_embedding: dim must be even and >= 2, got " + std::to_string(dim));
  const int64_t n = t.numel(), h = dim / 2;
  std::vector<double> freq(static_cast<size_t>(h)), out(static_cast<size_t>(n * dim));
  for (int64_t i = 0; i < h; ++i) freq[static_cast<size_t>(i)] = std::pow(10000.0, -static_cast<double>(i) / static_cast<double>(h));
  const std::vector<double> tv = t.to_vector();
  for (int64_t r = 0; r < n; ++r)
    for (int64_t i = 0; i < h; ++i) {
      const double a = tv[static_cast<size_t>(r)] * freq[static_cast<size_t>(i)];
      out[static_cast<size_t>(r * dim + i)] = std::sin(a);
      out[static_cast<size_t>(r * dim + h + i)] = std::cos(a);
    }
  return Tensor::from_vector(out, {n, dim}).to(dtype);
}


void NoisePredictor::add_class_vectors(int64_t classes, int64_t width) {
  if (classes < 0) throw Error("noise predictor: classes must be >= 0 (0: unconditional), got " + std::to_string(classes));
  classes_ = classes;
  if (classes > 0) class_vectors_ = register_parameter("class_vectors", Tensor::zeros({classes + 1, width}));
}

Tensor NoisePredictor::with_class(const Tensor& emb, const Tensor& y, const std::string& who) const {
  if (classes_ == 0) {
    if (y.defined()) throw Error(who + ": labels given to an unconditional noise predictor (classes 0)");
    return emb;
  }
  if (!y.defined()) throw Error(who + ": a class-conditional noise predictor (" + std::to_string(classes_) + " classes) needs labels");
  check_labels(y, emb.size(0), classes_ + 1, who + " (label " + std::to_string(classes_) + ": none)");
  return emb + index_select(class_vectors_, 0, y).to(emb.dtype());
}

MLPNoisePredictor::MLPNoisePredictor(int64_t dims, const std::vector<int64_t>& hidden, Generator& gen, int64_t embedding, int64_t classes)
    : dims_(dims), embedding_(embedding), hidden_(hidden) {
  add_class_vectors(classes, embedding);
  std::vector<int64_t> sizes = {dims + embedding};
  sizes.insert(sizes.end(), hidden.begin(), hidden.end());
  sizes.push_back(dims);
  net_ = register_module("net", nn::mlp<nn::SiLU>(sizes, gen));
}

Tensor MLPNoisePredictor::predict(const Tensor& x_t, const Tensor& t, const Tensor& y) {
  if (x_t.dim() != 2 || x_t.size(1) != dims_)
    throw Error("MLPNoisePredictor: expects x_t [N, " + std::to_string(dims_) + "], got " + x_t.shape().str());
  return net_->forward(concat({x_t, with_class(timestep_embedding(t, embedding_, x_t.dtype()), y, "MLPNoisePredictor")}, 1));
}

// ---------------------------------------------------------------- U-Net pieces

ResBlock::ResBlock(int64_t in, int64_t out, int64_t emb_dim, int64_t groups, Generator& gen) {
  norm1_ = register_module("norm1", std::make_shared<nn::GroupNorm>(groups, in));
  conv1_ = register_module("conv1", std::make_shared<nn::Conv2d>(in, out, 3, gen, 1, 1));
  emb_proj_ = register_module("emb_proj", std::make_shared<nn::Linear>(emb_dim, out, gen));
  norm2_ = register_module("norm2", std::make_shared<nn::GroupNorm>(groups, out));
  conv2_ = register_module("conv2", std::make_shared<nn::Conv2d>(out, out, 3, gen, 1, 1));
  nn::init::zeros_(conv2_->weight);  // the block starts as its skip path
  nn::init::zeros_(conv2_->bias);
  if (in != out) skip_ = register_module("skip", std::make_shared<nn::Conv2d>(in, out, 1, gen));
}

Tensor ResBlock::forward(const Tensor& x, const Tensor& emb) {
  Tensor h = conv1_->forward(silu(norm1_->forward(x)));
  // the step's embedding, one value per channel, added at every position
  Tensor e = emb_proj_->forward(silu(emb));
  h = h + reshape(e, {e.size(0), e.size(1), 1, 1});
  h = conv2_->forward(silu(norm2_->forward(h)));
  return (skip_ ? skip_->forward(x) : x) + h;
}

SelfAttention2d::SelfAttention2d(int64_t channels, int64_t groups, Generator& gen) {
  norm_ = register_module("norm", std::make_shared<nn::GroupNorm>(groups, channels));
  qkv_ = register_module("qkv", std::make_shared<nn::Conv2d>(channels, 3 * channels, 1, gen));
  proj_ = register_module("proj", std::make_shared<nn::Conv2d>(channels, channels, 1, gen));
  nn::init::zeros_(proj_->weight);  // starts as the identity
  nn::init::zeros_(proj_->bias);
}

Tensor SelfAttention2d::forward(const Tensor& x) {
  const int64_t n = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
  Tensor qkv = reshape(qkv_->forward(norm_->forward(x)), {n, 3 * c, hw});
  Tensor q = slice(qkv, 1, 0, c), k = slice(qkv, 1, c, 2 * c), v = slice(qkv, 1, 2 * c, 3 * c);  // [N, C, HW]
  // a[i, j] = softmax_j(q_i . k_j / sqrt(C)): how much position i reads from position j
  Tensor a = softmax(matmul(transpose(q, 1, 2), k) / std::sqrt(static_cast<double>(c)), -1);  // [N, HW, HW]
  Tensor out = matmul(v, transpose(a, 1, 2));  // out[:, c, i] = sum_j a[i, j] v[:, c, j]
  return x + proj_->forward(reshape(out, x.shape()));
}

// ---------------------------------------------------------------- the U-Net

UNet::UNet(const UNetOptions& o, Generator& gen) : options_(o) {
  if (o.multipliers.empty()) throw Error("UNet: needs at least one level (multipliers is empty)");
  const int64_t emb_dim = 4 * o.base;
  auto width = [&](size_t level) { return o.base * o.multipliers[level]; };
  for (size_t l = 0; l < o.multipliers.size(); ++l)
    if (width(l) % o.groups || o.base % o.groups)
      throw Error("UNet: groups = " + std::to_string(o.groups) + " must divide every width (level " + std::to_string(l) +
                  " is " + std::to_string(width(l)) + " wide)");
  emb1_ = register_module("emb1", std::make_shared<nn::Linear>(o.base, emb_dim, gen));
  emb2_ = register_module("emb2", std::make_shared<nn::Linear>(emb_dim, emb_dim, gen));
  add_class_vectors(o.classes, emb_dim);
  conv_in_ = register_module("conv_in", std::make_shared<nn::Conv2d>(o.channels, o.base, 3, gen, 1, 1));
  const size_t levels = o.multipliers.size();
  int64_t ch = o.base;
  down_.resize(levels);
  for (size_t l = 0; l < levels; ++l) {
    for (int64_t b = 0; b < o.blocks; ++b) {
      down_[l].push_back(register_module("down" + std::to_string(l) + "_" + std::to_string(b),
                                         std::make_shared<ResBlock>(ch, width(l), emb_dim, o.groups, gen)));
      ch = width(l);
    }
    if (l + 1 < levels)
      downsample_.push_back(register_module("downsample" + std::to_string(l), std::make_shared<nn::Conv2d>(ch, ch, 3, gen, 2, 1)));
  }
  mid1_ = register_module("mid1", std::make_shared<ResBlock>(ch, ch, emb_dim, o.groups, gen));
  if (o.attention) attention_ = register_module("mid_attention", std::make_shared<SelfAttention2d>(ch, o.groups, gen));
  mid2_ = register_module("mid2", std::make_shared<ResBlock>(ch, ch, emb_dim, o.groups, gen));
  up_.resize(levels);
  for (size_t l = levels; l-- > 0;) {
    for (int64_t b = 0; b < o.blocks; ++b) {
      const int64_t in = b == 0 ? ch + width(l) : ch;  // the first block also reads the level's skip
      up_[l].push_back(register_module("up" + std::to_string(l) + "_" + std::to_string(b),
                                       std::make_shared<ResBlock>(in, width(l), emb_dim, o.groups, gen)));
      ch = width(l);
    }
    if (l > 0)
      upsample_.push_back(register_module("upsample" + std::to_string(l), std::make_shared<nn::Conv2d>(ch, ch, 3, gen, 1, 1)));
  }
  norm_out_ = register_module("norm_out", std::make_shared<nn::GroupNorm>(o.groups, ch));
  conv_out_ = register_module("conv_out", std::make_shared<nn::Conv2d>(ch, o.channels, 3, gen, 1, 1));
  nn::init::zeros_(conv_out_->weight);
  nn::init::zeros_(conv_out_->bias);
}

Tensor UNet::predict(const Tensor& x_t, const Tensor& t, const Tensor& y) {
  const UNetOptions& o = options_;
  if (x_t.dim() != 4 || x_t.size(1) != o.channels)
    throw Error("UNet: expects x_t [N, " + std::to_string(o.channels) + ", H, W], got " + x_t.shape().str());
  const int64_t halvings = static_cast<int64_t>(o.multipliers.size()) - 1;
  if (x_t.size(2) % (int64_t{1} << halvings) || x_t.size(3) % (int64_t{1} << halvings))
    throw Error("UNet: " + std::to_string(halvings) + " halvings need H and W divisible by " +
                std::to_string(int64_t{1} << halvings) + ", got " + x_t.shape().str());
  if (t.numel() != x_t.size(0))
    throw Error("UNet: one step per image: t " + t.shape().str() + " for x_t " + x_t.shape().str());
  const Tensor emb = with_class(emb2_->forward(silu(emb1_->forward(timestep_embedding(t, o.base, x_t.dtype())))), y, "UNet");
  Tensor h = conv_in_->forward(x_t);
  std::vector<Tensor> skips;
  for (size_t l = 0; l < down_.size(); ++l) {
    for (auto& block : down_[l]) h = block->forward(h, emb);
    skips.push_back(h);
    if (l < downsample_.size()) h = downsample_[l]->forward(h);
  }
  h = mid1_->forward(h, emb);
  if (attention_) h = attention_->forward(h);
  h = mid2_->forward(h, emb);
  size_t up_index = 0;
  for (size_t l = up_.size(); l-- > 0;) {
    h = concat({h, skips[l]}, 1);
    for (auto& block : up_[l]) h = block->forward(h, emb);
    if (l > 0) h = upsample_[up_index++]->forward(upsample_nearest2d(h, 2));
  }
  return conv_out_->forward(silu(norm_out_->forward(h)));
}

std::string MLPNoisePredictor::config_json() const {
  nlohmann::json c{{"kind", "mlp"}, {"dims", dims_}, {"hidden", hidden_}, {"embedding", embedding_}};
  if (classes_ > 0) c["classes"] = classes_;  // a conditional predictor's only
  return c.dump();
}

std::string UNet::config_json() const {
  const UNetOptions& o = options_;
  nlohmann::json c{{"kind", "unet"},     {"channels", o.channels}, {"base", o.base},          {"multipliers", o.multipliers},
                   {"blocks", o.blocks}, {"groups", o.groups},     {"attention", o.attention}};
  if (o.classes > 0) c["classes"] = o.classes;  // a conditional predictor's only
  return c.dump();
}

}  // namespace dgm::models
