// Homework, GAN chapter, exercise 1 (10 points): the non-saturating generator loss.
//   grade: make grade CHAPTER=gan      (the math: docs/chapters/gan.md, section 3)
#include "homework/gan/exercises.h"

namespace hw::gan {

// D(x) = sigmoid(l) is the discriminator's probability that x is real, l its logit.
// The minimax game gives the generator the loss E[log(1 - D(G(z)))], whose gradient
// vanishes exactly when the generator is bad (D(G(z)) ~ 0, early in training). Goodfellow
// et al. (2014) proposed instead to maximise log D(G(z)):
//
//     L_G = -E[ log D(G(z)) ] = E[ -log sigmoid(l) ] = E[ softplus(-l) ]
//
// fake_logits: the logits of D on a batch of fakes, [N] or [N, 1]. Return the mean over
// the batch, a scalar (shape []). Stable for l = -1000 (log sigmoid(-1000) is -1000, not
// log 0 = -inf): dgm::softplus and dgm::log_sigmoid are written for that.
Tensor generator_loss_non_saturating(const Tensor& fake_logits) {
  DGM_TODO("generator_loss_non_saturating");
}

}  // namespace hw::gan
