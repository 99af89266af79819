// Homework, conditional chapter, exercise 1 (10 points): classifier-free guidance.
//   grade: make grade CHAPTER=conditional      (the math: docs/chapters/conditional.md, step 4)
#include "homework/conditional/exercises.h"

namespace hw::conditional {

// One network predicts the noise given the label, eps(x_t, t, y), and without it,
// eps(x_t, t, none). Sampling with guidance weight w uses
//
//     eps~ = (1 + w) eps(x_t, t, y) - w eps(x_t, t, none)
//
// w = 0 is the conditional model, w = -1 the unconditional one; w > 0 pushes the
// samples toward what makes the class unmistakable (the score of p(x | y)^(1+w) / p(x)^w).
// eps_conditional, eps_unconditional: the same shape (any); return eps~ in that shape,
// with engine ops (so that a gradient could flow through it).
Tensor guided_noise(const Tensor& eps_conditional, const Tensor& eps_unconditional, double w) {
  DGM_TODO("guided_noise");
}

}  // namespace hw::conditional
