// Homework, conditional chapter, exercise 2 (10 points): the label dropout of classifier-free guidance.
//   grade: make grade CHAPTER=conditional      (the math: docs/chapters/conditional.md, step 4)
#include "homework/conditional/exercises.h"

namespace hw::conditional {

// Classifier-free guidance trains one network on both p(x | y) and p(x): each training
// label is replaced by "none" with probability p_uncond, independently per example.
// "none" is its own index, `classes` (one past the real labels 0..classes-1): the
// noise predictor keeps a learned vector for it. Dropping to a real class (0, say)
// would teach the network that class is everything.
//
// labels: int64 [N] in 0..classes-1. Return int64 [N]: each entry kept, or `classes`
// with probability p_uncond. Draw the randomness from gen (gen.uniform01() is a
// uniform number in [0, 1)), one draw per example.
Tensor drop_labels(const Tensor& labels, int64_t classes, double p_uncond, Generator& gen) {
  DGM_TODO("drop_labels");
}

}  // namespace hw::conditional
