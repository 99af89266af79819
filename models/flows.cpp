// dgm/models/flows.cpp
#include "models/flows.h"

#include <cmath>

#include "autograd/graph.h"

namespace dgm::models {

RealNVP2D::RealNVP2D(int layers, int64_t hidden, Generator& gen) {
  for (int i = 0; i < layers; ++i) {
    nets_.push_back(register_module("c" + std::to_string(i), nn::mlp({2, hidden, hidden, 2}, gen)));
    Tensor m = Tensor::zeros({1, 2});
    m.data<float>()[i % 2] = 1;  // layer i keeps coordinate i % 2
    masks_.push_back(m);
  }
}

const Tensor& RealNVP2D::mask(size_t i, DType dtype) {
  if (masks_[i].dtype() != dtype) masks_[i] = masks_[i].to(dtype);  // once, after to(Float64)
  return masks_[i];
}

RealNVP2D::Flowed RealNVP2D::forward_flow(const Tensor& x0) {
  if (x0.dim() != 2 || x0.size(1) != 2) throw Error("RealNVP2D: expects points [N, 2], got " + x0.shape().str());
  Tensor x = x0;
  Tensor log_det = Tensor::zeros({x.size(0)}, x.dtype());
  for (size_t i = 0; i < nets_.size(); ++i) {
    const int64_t keep = static_cast<int64_t>(i % 2), tr = 1 - keep;
    Tensor st = nets_[i]->forward(x * mask(i, x.dtype()));
    Tensor s = tanh(select(st, 1, 0)), t = select(st, 1, 1);
    Tensor y_tr = select(x, 1, tr) * exp(s) + t;  // y_tr = x_tr e^s + t
    Tensor x_keep = select(x, 1, keep);
    x = keep == 0 ? stack({x_keep, y_tr}, 1) : stack({y_tr, x_keep}, 1);
    log_det = log_det + s;                         // log |det| of one coupling: s
  }
  return {x, log_det};
}

Tensor RealNVP2D::inverse(const Tensor& z) {
  Tensor y = z;
  for (size_t i = nets_.size(); i-- > 0;) {
    const int64_t keep = static_cast<int64_t>(i % 2), tr = 1 - keep;
    Tensor st = nets_[i]->forward(y * mask(i, y.dtype()));  // the kept part is unchanged: same s, t
    Tensor s = tanh(select(st, 1, 0)), t = select(st, 1, 1);
    Tensor x_tr = (select(y, 1, tr) - t) * exp(neg(s));  // x_tr = (y_tr - t) e^-s
    Tensor y_keep = select(y, 1, keep);
    y = keep == 0 ? stack({y_keep, x_tr}, 1) : stack({x_tr, y_keep}, 1);
  }
  return y;
}

Tensor RealNVP2D::log_prob(const Tensor& x) {
  Flowed f = forward_flow(x);
  // log N(z; 0, I) in 2-D = -|z|^2 / 2 - log(2 pi)
  return f.log_det - sum(square(f.z), {1}) * 0.5 - std::log(2 * M_PI);
}

Tensor RealNVP2D::sample(int64_t n, Generator& gen) {
  NoGradGuard ng;
  return inverse(gen.normal({n, 2}, 0, 1, nets_[0]->parameters()[0].dtype()));
}

}  // namespace dgm::models
