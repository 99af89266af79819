// dgm/models/flows.h — normalizing flows: an invertible f with a tractable
// Jacobian turns a simple base density into a model of the data
// (Dinh, Sohl-Dickstein & Bengio 2017, RealNVP).
//
//   z = f(x),   log p(x) = log p_Z(f(x)) + log |det df/dx|       (change of variables)
//
// An affine coupling layer keeps one part of x and transforms the other with
// a scale and shift computed from the kept part:
//   y_keep = x_keep,   y_tr = x_tr * exp(s(x_keep)) + t(x_keep)
// Its Jacobian is triangular, so log |det| = sum s(x_keep); its inverse is
//   x_tr = (y_tr - t(y_keep)) * exp(-s(y_keep)).
// RealNVP2D stacks such layers on 2-D points, alternating which coordinate is
// kept, with a standard normal base.
#pragma once

#include <utility>
#include <vector>

#include "models/density.h"

namespace dgm::models {

class RealNVP2D : public TrainableDensity {
 public:
  // `layers` affine couplings, each (s, t) from an MLP 2 -> hidden -> hidden -> 2
  // on the masked input; s = tanh(raw s) keeps the scales bounded.
  RealNVP2D(int layers, int64_t hidden, Generator& gen);

  struct Flowed {
    Tensor z;        // f(x), [N, 2]
    Tensor log_det;  // log |det df/dx| per example, [N]
  };
  Flowed forward_flow(const Tensor& x);
  Tensor inverse(const Tensor& z);  // f^-1, [N, 2]

  std::string name() const override { return "realnvp2d"; }
  // log N(f(x); 0, I) + log |det df/dx|, [N]
  Tensor log_prob(const Tensor& x) override;
  Tensor sample(int64_t n, Generator& gen) override;  // f^-1(z), z ~ N(0, I)

 private:
  std::vector<std::shared_ptr<nn::Sequential>> nets_;
  const Tensor& mask(size_t i, DType dtype);
  std::vector<Tensor> masks_;  // [1, 2]: 1 on the kept coordinate
};

}  // namespace dgm::models
