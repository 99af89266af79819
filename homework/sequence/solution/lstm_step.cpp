// Reference solution: one LSTM step (homework/sequence/lstm_step.cpp).
#include "homework/sequence/exercises.h"

namespace hw::sequence {

std::pair<Tensor, Tensor> lstm_step(const Tensor& x, const Tensor& h, const Tensor& c, const Tensor& W_ih, const Tensor& W_hh,
                                    const Tensor& b) {
  const int64_t H = h.size(1);
  const Tensor gates = dgm::linear(x, W_ih, b) + dgm::linear(h, W_hh);
  const Tensor i = dgm::sigmoid(dgm::slice(gates, 1, 0, H)), f = dgm::sigmoid(dgm::slice(gates, 1, H, 2 * H));
  const Tensor g = dgm::tanh(dgm::slice(gates, 1, 2 * H, 3 * H)), o = dgm::sigmoid(dgm::slice(gates, 1, 3 * H, 4 * H));
  const Tensor c2 = f * c + i * g;
  return {o * dgm::tanh(c2), c2};
}

}  // namespace hw::sequence
