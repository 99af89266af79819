// Homework, ELBO / VAE chapter, exercise 1 (10 points): the analytic Gaussian KL.
//   grade: make grade CHAPTER=vae      (the math: docs/chapters/vae.md, section 1)
#include "homework/vae/exercises.h"

namespace hw::vae {

// The encoder gives q(z | x) = N(mu, diag(sigma^2)) with sigma^2 = exp(logvar); the prior
// is p(z) = N(0, I). Their KL divergence has a closed form, a sum over the Z dimensions:
//
//     KL(q || p) = 1/2 sum_j ( sigma_j^2 + mu_j^2 - 1 - log sigma_j^2 )
//
// mu, logvar: [N, Z]. Return the KL of each row, [N]. Write it with engine ops
// (dgm::exp, dgm::square, dgm::sum(x, {1}), ...): the VAE trains through it.
Tensor gaussian_kl(const Tensor& mu, const Tensor& logvar) {
  DGM_TODO("gaussian_kl");
}

}  // namespace hw::vae
