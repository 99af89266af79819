// dgm/models/conditional.h — what every class-conditional model shares
// (docs/chapters/conditional.md).
//
// A conditional family (PixelCNN, the VAE, DDPM with a labelled noise predictor)
// implements ConditionalDensity (models/density.h): log p(x | y) and x ~ p(x | y).
// With it and a prior p(y), Bayes' rule makes a classifier and the mixture makes
// an unconditional model:
//   log p(x | k) for every class k          class_log_likelihoods  [N, K]
//   log p(x) = logsumexp_k (log p(x | k) + log p(k))                mixture_log_prob
//   log p(y | x) = log p(x | y) + log p(y) - log p(x)               log_posterior
// and sampling-importance-resampling turns an unconditional sampler and a
// classifier into a conditional sampler: draws x_i ~ p(x), weights
// w_i = p(y | x_i) / p(y), resample in proportion to w (sir_indices).
#pragma once

#include <cstdint>
#include <string>

#include <memory>

#include "autograd/nn.h"
#include "autograd/random.h"
#include "models/density.h"

namespace dgm::models {

// Labels must be int64 [n] in 0..classes-1; anything else is an error naming `who`, the shape and the bad value.
void check_labels(const Tensor& y, int64_t n, int64_t classes, const std::string& who);

// log p(x | k) for k = 0..K-1: [N, K], float64, no graph; `chunk` examples (times K) per pass.
Tensor class_log_likelihoods(ConditionalDensity& model, const Tensor& x, int64_t chunk = 256);

// log sum_k exp(loglik[n, k] + log_prior[k]) per row: [N]. log_prior: [K] (undefined: uniform, -log K).
Tensor mixture_log_prob(const Tensor& loglik, const Tensor& log_prior = Tensor());
// log p(y = k | x_n) = loglik[n, k] + log_prior[k] - mixture_log_prob[n]: [N, K].
Tensor log_posterior(const Tensor& loglik, const Tensor& log_prior = Tensor());

// log (1/K) sum_k p(x | k) with a graph (what a conditional family's log_prob(x) returns): K passes.
Tensor uniform_mixture_log_prob(ConditionalDensity& model, const Tensor& x);

// Sampling-importance-resampling: `count` indices drawn with replacement in proportion to
// exp(log_weights) (int64 [count]). Weights that are all -inf or any NaN are an error.
Tensor sir_indices(const Tensor& log_weights, int64_t count, Generator& gen);

// The rows of the identity: one_hot(y)[n, k] = 1 if y_n = k, [N, classes] (a VAE's or GAN's label input).
Tensor one_hot(const Tensor& y, int64_t classes, DType dtype = DType::Float32);

// The share of predicted labels (int64 [N]) equal to y.
double label_accuracy(const Tensor& predicted, const Tensor& y);

// The discriminative side of the comparisons: logistic (softmax) regression p(y | x) = softmax(W x + b)
// on flat examples [N, D] (float64), trained by Adam on the cross-entropy with a small L2 penalty.
class LogisticRegression {
 public:
  LogisticRegression(int64_t dims, int64_t classes, Generator& gen);
  // Adam on minibatches of `batch` (0: the whole set: plain maximum likelihood, no gradient noise),
  // rate lr, an L2 penalty weight_decay.
  void fit(const Tensor& x, const Tensor& y, Generator& gen, int64_t steps, int64_t batch = 64, double lr = 1e-2,
           double weight_decay = 1e-4);
  Tensor logits(const Tensor& x);         // [N, classes], with a graph
  Tensor probabilities(const Tensor& x);  // softmax, no graph
  double accuracy(const Tensor& x, const Tensor& y);
  std::shared_ptr<nn::Linear> linear;
};

// The labels 0, 0, ..., 1, 1, ..., K-1: `each` of every class, int64 [K * each] (sample grids, one row per class).
Tensor labels_by_class(int64_t classes, int64_t each);

}  // namespace dgm::models
