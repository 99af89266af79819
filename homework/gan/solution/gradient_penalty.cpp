// Reference solution: homework/gan/gradient_penalty.cpp.
#include "homework/gan/exercises.h"

#include "autograd/graph.h"

namespace hw::gan {

Tensor gradient_penalty(const Critic& critic, const Tensor& real, const Tensor& fake, const Tensor& eps) {
  const Tensor x_hat = (eps * real + (1.0 - eps) * fake).detach().set_requires_grad(true);
  const Tensor g = dgm::grad({dgm::sum(critic(x_hat))}, {x_hat}, {}, /*retain_graph=*/true, /*create_graph=*/true)[0];
  const Tensor norm = dgm::sqrt(dgm::sum(dgm::square(g), {1}));
  return dgm::mean(dgm::square(norm - 1.0));
}

}  // namespace hw::gan
