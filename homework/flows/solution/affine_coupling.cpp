// Reference solution: homework/flows/affine_coupling.cpp.
#include "homework/flows/exercises.h"

namespace hw::flows {

Coupled coupling_forward(const Tensor& x, const Tensor& mask, const Conditioner& net) {
  const Tensor keep = 1.0 - mask;
  const ScaleShift st = net(mask * x);
  const Tensor s = st.log_scale * keep;  // only the transformed dimensions contribute
  return {mask * x + keep * (x * dgm::exp(s) + st.shift), dgm::sum(s, {1})};
}

Tensor coupling_inverse(const Tensor& y, const Tensor& mask, const Conditioner& net) {
  const Tensor keep = 1.0 - mask;
  const ScaleShift st = net(mask * y);
  return mask * y + keep * (y - st.shift) * dgm::exp(-st.log_scale * keep);
}

}  // namespace hw::flows
