// dgm/models/toy2d.h — built-in 2-D toy data sets (no download needed).
#pragma once

#include "autograd/random.h"

namespace dgm::data {

struct Labelled2D {
  Tensor x;       // [n, 2] float32
  Tensor labels;  // [n] int64
};

// Two interleaving half circles (scikit-learn's make_moons): label 0 is the
// upper moon centred at (0, 0), label 1 the lower one centred at (1, 0.5);
// each point gets N(0, noise^2) added per coordinate.
Labelled2D two_moons(int64_t n, double noise, Generator& gen);

}  // namespace dgm::data
