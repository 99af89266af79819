// dgm/homework/vae/exercises.h — homework for the ELBO / VAE chapter
// (docs/chapters/elbo.md, docs/chapters/vae.md).
#pragma once

#include <functional>
#include <vector>

#include "autograd/ops.h"
#include "homework/grader/grader.h"

namespace hw::vae {

using dgm::Tensor;
using Decoder = std::function<Tensor(const Tensor&)>;  // z [N, Z] -> Bernoulli logits [N, D]

// gaussian_kl.cpp: KL(N(mu, diag exp(logvar)) || N(0, I)), one value per row.
Tensor gaussian_kl(const Tensor& mu, const Tensor& logvar);
// elbo.cpp: the reparameterised one-sample ELBO of a Bernoulli VAE, one value per row.
Tensor elbo(const Tensor& x, const Tensor& mu, const Tensor& logvar, const Tensor& eps, const Decoder& decoder);
// iwae_bound.cpp: log (1/K) sum_k exp(log_w[k, n]), stably, one value per column.
Tensor iwae_bound(const Tensor& log_weights);

struct Functions {
  std::function<Tensor(const Tensor&, const Tensor&)> gaussian_kl;
  std::function<Tensor(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Decoder&)> elbo;
  std::function<Tensor(const Tensor&)> iwae_bound;
};
inline Functions linked() { return {&hw::vae::gaussian_kl, &hw::vae::elbo, &hw::vae::iwae_bound}; }

std::vector<Exercise> exercises(const Functions& f);

}  // namespace hw::vae
