// dgm/models/conditional.cpp
#include "models/conditional.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/graph.h"
#include "autograd/optim.h"
#include "models/toolkit/transforms.h"

namespace dgm::models {

void check_labels(const Tensor& y, int64_t n, int64_t classes, const std::string& who) {
  if (!y.defined()) throw Error(who + ": labels are missing");
  if (y.dtype() != DType::Int64 || y.dim() != 1 || y.size(0) != n)
    throw Error(who + ": labels must be int64 [" + std::to_string(n) + "] (one per example), got " + y.shape().str());
  for (int64_t i = 0; i < n; ++i) {
    const double v = y.at(i);
    if (v < 0 || v >= static_cast<double>(classes))
      throw Error(who + ": label " + std::to_string(static_cast<int64_t>(v)) + " of example " + std::to_string(i) + " is not in 0.." +
                  std::to_string(classes - 1));
  }
}

Tensor one_hot(const Tensor& y, int64_t classes, DType dtype) {
  check_labels(y, y.numel(), classes, "one_hot");
  std::vector<double> v(static_cast<size_t>(y.numel() * classes), 0.0);
  for (int64_t n = 0; n < y.numel(); ++n) v[static_cast<size_t>(n * classes + static_cast<int64_t>(y.at(n)))] = 1.0;
  return Tensor::from_vector(v, {y.numel(), classes}).to(dtype);
}

Tensor labels_by_class(int64_t classes, int64_t each) {
  std::vector<int64_t> v;
  for (int64_t k = 0; k < classes; ++k)
    for (int64_t i = 0; i < each; ++i) v.push_back(k);
  return Tensor::from_indices(v, {classes * each});
}

Tensor class_log_likelihoods(ConditionalDensity& model, const Tensor& x, int64_t chunk) {
  NoGradGuard ng;
  const int64_t N = x.size(0), K = model.classes();
  if (K < 1) throw Error("class_log_likelihoods: the model is not class-conditional (0 classes)");
  std::vector<Tensor> rows;
  for (int64_t s = 0; s < N; s += chunk) {
    const int64_t c = std::min(chunk, N - s);
    const Tensor part = slice(x, 0, s, s + c);
    std::vector<Tensor> copies(static_cast<size_t>(K), part);
    // block k of the K copies is labelled k: log p(x_n | k) at row k * c + n
    const Tensor lp = model.log_prob_given(concat(copies, 0), labels_by_class(K, c));
    rows.push_back(transpose(reshape(lp.to(DType::Float64), {K, c}), 0, 1).contiguous_copy());
  }
  return concat(rows, 0);
}

namespace {
Tensor with_prior(const Tensor& loglik, const Tensor& log_prior) {
  const int64_t K = loglik.size(1);
  if (!log_prior.defined()) return loglik - std::log(static_cast<double>(K));
  if (log_prior.shape() != Shape{K})
    throw Error("mixture_log_prob: log_prior must be [" + std::to_string(K) + "] (one per class), got " + log_prior.shape().str());
  return loglik + log_prior.to(loglik.dtype());
}
}  // namespace

Tensor mixture_log_prob(const Tensor& loglik, const Tensor& log_prior) {
  if (loglik.dim() != 2) throw Error("mixture_log_prob: log-likelihoods must be [N, K], got " + loglik.shape().str());
  return logsumexp(with_prior(loglik, log_prior), {1});
}

Tensor log_posterior(const Tensor& loglik, const Tensor& log_prior) {
  if (loglik.dim() != 2) throw Error("log_posterior: log-likelihoods must be [N, K], got " + loglik.shape().str());
  const Tensor joint = with_prior(loglik, log_prior);
  return joint - logsumexp(joint, {1}, true);
}

Tensor uniform_mixture_log_prob(ConditionalDensity& model, const Tensor& x) {
  const int64_t N = x.size(0), K = model.classes();
  std::vector<Tensor> copies(static_cast<size_t>(K), x);
  const Tensor lp = reshape(model.log_prob_given(concat(copies, 0), labels_by_class(K, N)), {K, N});
  return logsumexp(lp, {0}) - std::log(static_cast<double>(K));
}

Tensor sir_indices(const Tensor& log_weights, int64_t count, Generator& gen) {
  const int64_t n = log_weights.numel();
  double top = -INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    const double v = log_weights.at(i);
    if (std::isnan(v)) throw Error("sir_indices: the log-weight of draw " + std::to_string(i) + " is NaN");
    top = std::max(top, v);
  }
  if (!(top > -INFINITY)) throw Error("sir_indices: every one of the " + std::to_string(n) + " weights is 0");
  std::vector<double> cumulative(static_cast<size_t>(n));
  double total = 0;
  for (int64_t i = 0; i < n; ++i) cumulative[static_cast<size_t>(i)] = total += std::exp(log_weights.at(i) - top);
  std::vector<int64_t> picked;
  for (int64_t j = 0; j < count; ++j) {
    const double u = gen.uniform01() * total;
    auto it = std::upper_bound(cumulative.begin(), cumulative.end(), u);
    picked.push_back(std::min<int64_t>(n - 1, it - cumulative.begin()));
  }
  return Tensor::from_indices(picked, {count});
}

double label_accuracy(const Tensor& predicted, const Tensor& y) {
  if (predicted.numel() != y.numel())
    throw Error("label_accuracy: " + predicted.shape().str() + " predictions for " + y.shape().str() + " labels");
  int64_t right = 0;
  for (int64_t n = 0; n < y.numel(); ++n) right += predicted.at(n) == y.at(n);
  return static_cast<double>(right) / static_cast<double>(y.numel());
}

LogisticRegression::LogisticRegression(int64_t dims, int64_t classes, Generator& gen)
    : linear(std::make_shared<nn::Linear>(dims, classes, gen)) {
  linear->to(DType::Float64);
}

Tensor LogisticRegression::logits(const Tensor& x) { return linear->forward(x.to(DType::Float64)); }

void LogisticRegression::fit(const Tensor& x, const Tensor& y, Generator& gen, int64_t steps, int64_t batch, double lr,
                             double weight_decay) {
  optim::Adam opt(linear->parameters(), lr, 0.9, 0.999, 1e-8, weight_decay);
  data::Batches batches(x.size(0), batch > 0 ? std::min<int64_t>(batch, x.size(0)) : x.size(0), true, false);
  for (int64_t s = 0; s < steps;) {
    for (const Tensor& idx : batches.epoch(gen)) {
      if (s++ >= steps) break;
      opt.zero_grad();
      const Tensor loss = cross_entropy(logits(index_select(x, 0, idx)), index_select(y, 0, idx));
      loss.backward();
      opt.step();
    }
  }
}

Tensor LogisticRegression::probabilities(const Tensor& x) {
  NoGradGuard ng;
  return softmax(logits(x), 1);
}

double LogisticRegression::accuracy(const Tensor& x, const Tensor& y) {
  NoGradGuard ng;
  return label_accuracy(argmax(logits(x), 1), y);
}

}  // namespace dgm::models
