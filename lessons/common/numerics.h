// dgm/lessons/common/numerics.h — the two numerical helpers the lessons' CHECKs lean on:
// a Monte Carlo mean with its standard error, and Simpson's rule. (lesson.h includes it.)
#pragma once

#include <utility>
#include <vector>

namespace dgm::lesson {

// The mean of v and its standard error, sd / sqrt(n) with the n - 1 sample sd
// (the two sides of a Monte Carlo CHECK are compared within k of these).
std::pair<double, double> mean_and_se(const std::vector<double>& v);
// Composite Simpson's rule on f_0..f_n, values of a function at spacing h (n even).
double simpson(const std::vector<double>& f, double h);

}  // namespace dgm::lesson
