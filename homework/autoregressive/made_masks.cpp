// Homework, autoregressive chapter, exercise 1 (10 points): MADE's masks.
//   grade: make grade CHAPTER=autoregressive      (the math: docs/chapters/autoregressive.md, section 2)
#include "homework/autoregressive/exercises.h"

namespace hw::autoregressive {

// MADE (Germain et al. 2015) makes an MLP autoregressive by masking its weights.
// Every unit gets a degree m:
//   input d:        m_0(d) = its position in `order`, counted from 1
//                   (order = {2, 0, 1}: input 2 has degree 1, input 0 degree 2, input 1 degree 3);
//   hidden unit k of layer l (l = 1..L): m_l(k) = hidden_degrees[l - 1][k], given, in 1..D-1.
// A weight from unit j of layer l-1 to unit k of layer l is kept when
//   hidden layers:  M_l[k, j] = 1  if  m_l(k) >= m_{l-1}(j)   else 0
//   output layer:   M[d, j]   = 1  if  m_0(d)  >  m_L(j)       else 0   (strictly: d never sees itself)
// (output d predicts input d, so it carries input d's degree m_0(d)).
//
// Return the L + 1 masks, float32 0/1 tensors in the layout of a Linear layer's weight,
// [units out, units in]: [H_1, D], [H_2, H_1], ..., [D, H_L].
std::vector<Tensor> made_masks(const std::vector<int64_t>& order, const std::vector<std::vector<int64_t>>& hidden_degrees) {
  DGM_TODO("made_masks");
}

}  // namespace hw::autoregressive
