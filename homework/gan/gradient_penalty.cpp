// Homework, GAN chapter, exercise 2 (10 points): the gradient penalty (a double backward).
//   grade: make grade CHAPTER=gan      (the math: docs/chapters/gan.md, section 4)
#include "homework/gan/exercises.h"

namespace hw::gan {

// WGAN-GP (Gulrajani et al. 2017) keeps the critic f close to 1-Lipschitz by penalising
// its gradient's norm on points between real and fake samples:
//
//     x_hat = eps * real + (1 - eps) * fake                 (eps [N, 1], one per example)
//     GP    = mean_n ( || grad_x f(x_hat_n) ||_2 - 1 )^2
//
// The critic is then trained on its loss + lambda GP (the grader checks GP alone, no lambda).
// The gradient of GP with respect to the critic's PARAMETERS goes through grad_x f:
//   - make x_hat a leaf that requires grad (compute it, then .detach().set_requires_grad(true)),
//   - g = dgm::grad({dgm::sum(critic(x_hat))}, {x_hat}, {}, /*retain_graph=*/true,
//                   /*create_graph=*/true)[0]       <- create_graph: g itself has a graph,
//   - the norm per example over every axis but the first: dgm::sqrt(dgm::sum(dgm::square(g), {1})).
// real, fake: [N, D]. Return a scalar (shape []).
Tensor gradient_penalty(const Critic& critic, const Tensor& real, const Tensor& fake, const Tensor& eps) {
  DGM_TODO("gradient_penalty");
}

}  // namespace hw::gan
