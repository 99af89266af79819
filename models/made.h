// dgm/models/made.h — MADE: Masked Autoencoder for Distribution Estimation
// (Germain, Gregor, Murray, Larochelle 2015).
//
// The chain rule  p(x) = prod_d p(x_{o(d)} | x_{o(1)}, ..., x_{o(d-1)})  for an
// ordering o, computed in ONE pass of an MLP whose weights are masked so that
// output d only sees inputs earlier in the ordering (docs/chapters/autoregressive.md, eq. 2-4):
//   every unit k of hidden layer l gets a degree m_l(k) in [1, D-1];
//   input d has degree m_0(d) = its position in the ordering;
//   hidden mask  M_l[k, j] = [m_l(k) >= m_{l-1}(j)],  output mask  M[d, j] = [m_0(d) > m_L(j)].
// Outputs: one Bernoulli logit per input (levels = 2) or `levels` categorical
// logits per input (for grey-level images such as the 17-level digits).
#pragma once

#include <vector>

#include "models/density.h"

namespace dgm::models {

class MADE : public TrainableDensity {
 public:
  MADE(int64_t dims, const std::vector<int64_t>& hidden, int64_t levels, Generator& gen);

  // x [N, D] with values in [0, 1] (binary, or k / (levels - 1)).
  // Logits: [N, D] for levels = 2, [N, levels, D] otherwise.
  Tensor logits(const Tensor& x);
  std::string name() const override { return "made"; }
  // {"dims", "hidden", "levels", "order"} (the masks themselves are buffers in the checkpoint)
  std::string config_json() const override;
  Tensor log_prob(const Tensor& x) override;  // [N], nats: one network pass
  // n samples [n, D], D network passes (one per position in the ordering).
  Tensor sample(int64_t n, Generator& gen) override;
  // A completion: `observed` [n, D] keeps the dimensions where `known` [D] is
  // 1 and samples the others (the known dimensions must come first in the ordering).
  Tensor complete(const Tensor& observed, const Tensor& known, Generator& gen);

  // Re-draws the ordering (natural = 0, 1, ..., D-1 when `random` is false)
  // and the hidden degrees, and rebuilds the masks.
  void reorder(Generator& gen, bool random);
  // This ordering (a permutation of 0..D-1), hidden degrees drawn afresh, masks rebuilt
  // (what a model rebuilt from its JSON needs before its checkpoint's masks are loaded).
  void set_order(const std::vector<int64_t>& order, Generator& gen);
  const std::vector<int64_t>& order() const { return order_; }

  // Connectivity-agnostic training (Germain et al. 2015, section 3.3): a fixed
  // family of orderings, ordering k rebuilt from `seed + k` (k = 0 is the
  // natural order). Train with a random k per minibatch; evaluate with
  // log_prob_ensemble, the mixture (1/K) sum_k p_k(x) -- a normalised density.
  // (Averaging the K orderings' *logits* instead gives numbers that do not sum
  // to one over all images; lesson_autoregressive shows it.)
  void use_ordering(int64_t k, uint64_t seed);
  Tensor log_prob_ensemble(const Tensor& x, int64_t orderings, uint64_t seed);
  int64_t dims() const { return dims_; }
  int64_t levels() const { return levels_; }
  int64_t passes = 0;  // network passes so far (the lesson counts sampling cost with it)

 private:
  void build_masks(Generator& gen);
  int64_t dims_, levels_;
  std::vector<int64_t> hidden_, order_;
  std::vector<std::shared_ptr<nn::MaskedLinear>> layers_;
};

}  // namespace dgm::models
