// Homework, diffusion chapter, exercise 3 (10 points): DDPM's simple loss.
//   grade: make grade CHAPTER=diffusion      (the math: docs/chapters/diffusion.md, section 3)
#include "homework/diffusion/exercises.h"

namespace hw::diffusion {

// Ho et al. (2020) train a network eps_theta(x_t, t) to predict the noise that made x_t:
//
//     L_simple = E_{x_0, t, eps} || eps - eps_theta( sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t ) ||^2
//
// Given x0, the steps t (int64 [N]) and the noise eps (like x0), form x_t (your q_sample),
// call model(x_t, t), and return the mean of the squared error over every element
// (the batch and the dimensions), a scalar (shape []). Engine ops: the network trains through it.
Tensor l_simple(const NoiseModel& model, const Tensor& x0, const Tensor& t, const Tensor& noise, const Schedule& schedule) {
  DGM_TODO("l_simple");
}

}  // namespace hw::diffusion
