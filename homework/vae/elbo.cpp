// Homework, ELBO / VAE chapter, exercise 2 (10 points): the reparameterised ELBO.
//   grade: make grade CHAPTER=vae      (the math: docs/chapters/elbo.md, steps 2-3; docs/chapters/vae.md, section 1)
#include "homework/vae/exercises.h"

namespace hw::vae {

// One example's ELBO, estimated with one sample of z:
//
//     ELBO(x) = E_q(z|x)[ log p(x | z) ] - KL(q(z | x) || p(z))
//             ~ log p(x | z) - KL,   z = mu + sigma * eps,  sigma = exp(logvar / 2)
//
// The reparameterisation writes the sample as a differentiable function of (mu, logvar)
// and noise eps ~ N(0, I) drawn outside: gradients reach the encoder through z.
// p(x | z) is Bernoulli with logits l = decoder(z) [N, D], so
//     log p(x | z) = sum_d [ x_d log sigmoid(l_d) + (1 - x_d) log sigmoid(-l_d) ]
// (dgm::binary_cross_entropy_with_logits(l, x, dgm::Reduction::None) is minus each term,
// stably). The KL is your gaussian_kl.
// x: [N, D] in {0, 1}; mu, logvar, eps: [N, Z]. Return the ELBO of each row, [N].
Tensor elbo(const Tensor& x, const Tensor& mu, const Tensor& logvar, const Tensor& eps, const Decoder& decoder) {
  DGM_TODO("elbo");
}

}  // namespace hw::vae
