// Homework, sequence chapter, exercise 2 (10 points): one step of an LSTM.
//   grade: make grade CHAPTER=sequence      (the math: docs/chapters/sequence.md, step 2)
#include "homework/sequence/exercises.h"

namespace hw::sequence {

// x [N, I], h and c [N, H]; W_ih [4H, I], W_hh [4H, H], b [4H]. The pre-activations of the four
// gates, stacked in PyTorch's order i (input), f (forget), g (candidate), o (output):
//
//     [i, f, g, o] = x W_ih^T + h W_hh^T + b                            [N, 4H]
//     c' = sigmoid(f) * c + sigmoid(i) * tanh(g)
//     h' = sigmoid(o) * tanh(c')
//
// Return {h', c'}. Engine ops: linear (or matmul), slice along axis 1, sigmoid, tanh. The cell c
// is carried additively: with f near 1 and i near 0 it passes unchanged over many steps, which
// is what lets an LSTM remember.
std::pair<Tensor, Tensor> lstm_step(const Tensor& x, const Tensor& h, const Tensor& c, const Tensor& W_ih, const Tensor& W_hh,
                                    const Tensor& b) {
  DGM_TODO("lstm_step");
}

}  // namespace hw::sequence
