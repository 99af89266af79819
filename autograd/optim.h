// dgm/autograd/optim.h — optimizers and gradient clipping.
//
// step() updates each parameter in place from its .grad, with no graph
// recorded (as under NoGradGuard); a parameter without a gradient is skipped.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace dgm::optim {

class Optimizer {
 public:
  explicit Optimizer(std::vector<Tensor> params);
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  void zero_grad();  // drops every parameter's .grad
  double lr() const { return lr_; }
  void set_lr(double lr) { lr_ = lr; }
  const std::vector<Tensor>& params() const { return params_; }

 protected:
  std::vector<Tensor> params_;
  double lr_ = 1e-3;
};

// v <- momentum v + (g + wd p);  p <- p - lr v   (PyTorch's SGD; plain SGD when momentum = 0)
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, double lr, double momentum = 0.0, double weight_decay = 0.0);
  void step() override;

 private:
  double momentum_, weight_decay_;
  std::vector<Tensor> velocity_;
};

// Adam (Kingma & Ba 2015) with bias correction:
//   m <- b1 m + (1-b1) g,  v <- b2 v + (1-b2) g^2,
//   p <- p - lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
// weight_decay adds wd p to g (L2, as torch.optim.Adam); AdamW decays p directly.
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
       double eps = 1e-8, double weight_decay = 0.0);
  void step() override;
  int64_t steps() const { return t_; }
  // The moments and the step count, to save beside a checkpoint and resume from:
  // {"t": int64 [1], "m.<i>", "v.<i>"} for the i-th parameter.
  std::map<std::string, Tensor> state() const;
  // Every name must be there with its parameter's shape and dtype; checked before anything
  // is copied (an error names the tensor and both shapes, and leaves the optimizer unchanged).
  void load_state(const std::map<std::string, Tensor>& state);

 protected:
  double beta1_, beta2_, eps_, weight_decay_;
  bool decoupled_ = false;
  int64_t t_ = 0;
  std::vector<Tensor> m_, v_;
};

// AdamW (Loshchilov & Hutter 2019): p <- p - lr wd p, then the Adam step on g.
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weight_decay = 1e-2);
};

// Scales all gradients so that their joint L2 norm is at most max_norm.
// Returns the norm before clipping. A non-finite norm throws (NaN/Inf in a gradient).
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm);

}  // namespace dgm::optim
