// dgm/models/made.cpp
#include "models/made.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <nlohmann/json.hpp>

#include "autograd/graph.h"
#include "models/toolkit/distributions.h"

namespace dgm::models {

MADE::MADE(int64_t dims, const std::vector<int64_t>& hidden, int64_t levels, Generator& gen)
    : dims_(dims), levels_(levels), hidden_(hidden) {
  if (dims < 2) throw Error("MADE: needs at least 2 dimensions");
  if (levels < 2) throw Error("MADE: needs at least 2 levels");
  if (hidden.empty()) throw Error("MADE: needs at least one hidden layer");
  const int64_t out_per_dim = levels == 2 ? 1 : levels;
  int64_t prev = dims;
  for (size_t l = 0; l <= hidden.size(); ++l) {
    const int64_t width = l < hidden.size() ? hidden[l] : dims * out_per_dim;
    layers_.push_back(register_module("layer" + std::to_string(l),
                                      std::make_shared<nn::MaskedLinear>(prev, width, Tensor::ones({width, prev}), gen)));
    prev = width;
  }
  order_.resize(static_cast<size_t>(dims));
  std::iota(order_.begin(), order_.end(), 0);
  build_masks(gen);
}

void MADE::reorder(Generator& gen, bool random) {
  std::iota(order_.begin(), order_.end(), 0);
  if (random) {
    Tensor p = gen.permutation(dims_);
    for (int64_t i = 0; i < dims_; ++i) order_[static_cast<size_t>(i)] = static_cast<int64_t>(p.at(i));
  }
  build_masks(gen);
}

void MADE::set_order(const std::vector<int64_t>& order, Generator& gen) {
  std::vector<int64_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < dims_; ++i)
    if (sorted.size() != static_cast<size_t>(dims_) || sorted[static_cast<size_t>(i)] != i)
      throw Error("MADE::set_order: the ordering must be a permutation of 0.." + std::to_string(dims_ - 1));
  order_ = order;
  build_masks(gen);
}

void MADE::use_ordering(int64_t k, uint64_t seed) {
  Generator g(seed + static_cast<uint64_t>(k));
  reorder(g, /*random=*/k > 0);
}

Tensor MADE::log_prob_ensemble(const Tensor& x, int64_t K, uint64_t seed) {
  std::vector<Tensor> lps;
  for (int64_t k = 0; k < K; ++k) {
    use_ordering(k, seed);
    lps.push_back(log_prob(x));
  }
  return logsumexp(stack(lps, 0), {0}) - std::log(static_cast<double>(K));  // log (1/K) sum_k p_k(x)
}

void MADE::build_masks(Generator& gen) {
  // degrees: m0(d) = position of input d in the ordering, 1..D
  std::vector<int64_t> prev(static_cast<size_t>(dims_));
  for (int64_t pos = 0; pos < dims_; ++pos) prev[static_cast<size_t>(order_[static_cast<size_t>(pos)])] = pos + 1;
  const std::vector<int64_t> m0 = prev;
  for (size_t l = 0; l < hidden_.size(); ++l) {
    // m_l(k) ~ U{min m_{l-1}, ..., D-1}, so no unit is connected to nothing
    const int64_t lo = std::min<int64_t>(*std::min_element(prev.begin(), prev.end()), dims_ - 1);
    std::vector<int64_t> m(static_cast<size_t>(hidden_[l]));
    for (auto& v : m) v = gen.randint(lo, dims_);
    Tensor mask = Tensor::empty({hidden_[l], static_cast<int64_t>(prev.size())});
    float* pm = mask.data<float>();
    for (size_t k = 0; k < m.size(); ++k)
      for (size_t j = 0; j < prev.size(); ++j) pm[k * prev.size() + j] = m[k] >= prev[j] ? 1.f : 0.f;
    layers_[l]->set_mask(mask);
    prev = m;
  }
  // output unit (c, d) -- category c of dimension d, laid out c * D + d -- sees m_L(j) < m0(d)
  const int64_t out_per_dim = levels_ == 2 ? 1 : levels_;
  Tensor mask = Tensor::empty({out_per_dim * dims_, static_cast<int64_t>(prev.size())});
  float* pm = mask.data<float>();
  for (int64_t c = 0; c < out_per_dim; ++c)
    for (int64_t d = 0; d < dims_; ++d)
      for (size_t j = 0; j < prev.size(); ++j)
        pm[static_cast<size_t>(c * dims_ + d) * prev.size() + j] = m0[static_cast<size_t>(d)] > prev[j] ? 1.f : 0.f;
  layers_.back()->set_mask(mask);
}

Tensor MADE::logits(const Tensor& x) {
  if (x.dim() != 2 || x.size(1) != dims_)
    throw Error("MADE: expects inputs [N, " + std::to_string(dims_) + "], got " + x.shape().str());
  ++passes;
  Tensor h = (x - 0.5) * 2.0;  // centre the inputs
  for (size_t l = 0; l + 1 < layers_.size(); ++l) h = relu(layers_[l]->forward(h));
  Tensor out = layers_.back()->forward(h);
  return levels_ == 2 ? out : reshape(out, {x.size(0), levels_, dims_});
}

// log p(x) = sum_d log p(x_d | x_<d): each factor read off one output of one pass.
Tensor MADE::log_prob(const Tensor& x) {
  Tensor l = logits(x);
  if (levels_ == 2) return sum(dist::Bernoulli{l}.log_prob(x), {1});
  return sum(dist::Categorical{l, 1}.log_prob(dist::levels_to_index(x, levels_)), {1});
}

std::string MADE::config_json() const {
  return nlohmann::json{{"dims", dims_}, {"hidden", hidden_}, {"levels", levels_}, {"order", order_}}.dump();
}

Tensor MADE::sample(int64_t n, Generator& gen) {
  return complete(Tensor::zeros({n, dims_}, layers_[0]->weight.dtype()), Tensor(), gen);
}

Tensor MADE::complete(const Tensor& observed, const Tensor& known, Generator& gen) {
  NoGradGuard ng;
  const DType dt = layers_[0]->weight.dtype();
  Tensor x = observed.to(dt).contiguous_copy();
  const int64_t n = x.size(0);
  if (x.shape() != Shape{n, dims_}) throw Error("MADE::complete: observed must be [n, D], got " + x.shape().str());
  for (int64_t pos = 0; pos < dims_; ++pos) {
    const int64_t d = order_[static_cast<size_t>(pos)];
    if (known.defined() && known.at(d) != 0) continue;
    Tensor l = logits(x);
    Tensor v = levels_ == 2 ? dist::Bernoulli{slice(l, 1, d, d + 1)}.sample(gen)
                            : dist::index_to_levels(dist::Categorical{slice(l, 2, d, d + 1), 1}.sample(gen), levels_, dt);
    for (int64_t i = 0; i < n; ++i) {
      const double val = v.at(i);
      if (dt == DType::Float32) x.data<float>()[i * dims_ + d] = static_cast<float>(val);
      else x.data<double>()[i * dims_ + d] = val;
    }
  }
  return x;
}

}  // namespace dgm::models
