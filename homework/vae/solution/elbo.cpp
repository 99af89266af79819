// Reference solution: homework/vae/elbo.cpp.
#include "homework/vae/exercises.h"

namespace hw::vae {

Tensor elbo(const Tensor& x, const Tensor& mu, const Tensor& logvar, const Tensor& eps, const Decoder& decoder) {
  const Tensor z = mu + dgm::exp(0.5 * logvar) * eps;  // the reparameterisation
  const Tensor log_px_given_z =
      -dgm::sum(dgm::binary_cross_entropy_with_logits(decoder(z), x, dgm::Reduction::None), {1});
  return log_px_given_z - gaussian_kl(mu, logvar);
}

}  // namespace hw::vae
