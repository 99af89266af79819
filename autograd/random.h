// dgm/autograd/random.h — seeded, explicit random numbers.
//
// A Generator is passed to everything random (initialisers, sampling, data
// shuffling). It wraps std::mt19937_64, whose output sequence the C++
// standard fixes, and converts raw 64-bit words to uniforms and normals
// itself (the standard library's distributions differ between
// implementations), so the same seed gives bit-identical numbers everywhere.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include "autograd/tensor.h"

namespace dgm {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) { manual_seed(seed); }
  void manual_seed(uint64_t seed);
  uint64_t seed() const { return seed_; }
  // The whole state as text (the engine's words, the Box-Muller spare): a training run
  // saves it beside its checkpoint so that a resumed run draws the numbers it would have.
  std::string state() const;
  // Back to a state() string; a malformed one throws naming what is wrong.
  void set_state(const std::string& state);

  // --- scalars
  uint64_t next_u64() { return engine_(); }
  double uniform01();                      // [0, 1) with 53 random bits
  double normal01();                       // N(0, 1), Box–Muller
  int64_t randint(int64_t low, int64_t high);  // uniform in [low, high), unbiased

  // --- tensors
  Tensor uniform(const Shape& shape, double low = 0.0, double high = 1.0, DType dtype = DType::Float32);
  Tensor normal(const Shape& shape, double mean = 0.0, double std = 1.0, DType dtype = DType::Float32);
  Tensor bernoulli(const Tensor& probs);   // 0/1 with P(1) = probs, same shape and dtype
  Tensor bernoulli(const Shape& shape, double p, DType dtype = DType::Float32);
  Tensor randint(const Shape& shape, int64_t low, int64_t high);  // int64
  Tensor permutation(int64_t n);                                  // int64, a shuffle of 0..n-1
  // Fills an existing tensor in place (used by initialisers).
  void fill_uniform_(Tensor& t, double low, double high);
  void fill_normal_(Tensor& t, double mean, double std);

 private:
  std::mt19937_64 engine_;
  uint64_t seed_ = 0;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace dgm
