// dgm/lessons/common/numerics.h — the numerical helpers the lessons' CHECKs lean on: a
// Monte Carlo mean with its standard error, Simpson's rule, and the area under the ROC curve
// two ways. (lesson.h includes it.)
#pragma once

#include <utility>
#include <vector>

namespace dgm::lesson {

// The mean of v and its standard error, sd / sqrt(n) with the n - 1 sample sd
// (the two sides of a Monte Carlo CHECK are compared within k of these).
std::pair<double, double> mean_and_se(const std::vector<double>& v);
// Composite Simpson's rule on f_0..f_n, values of a function at spacing h (n even).
double simpson(const std::vector<double>& f, double h);
// The area under the ROC curve of a score that should be higher on `out` than on `in`:
// P(score_out > score_in) + P(tie) / 2, by ranks (Mann-Whitney U; ties get their mean rank) ...
double auroc_by_ranks(const std::vector<double>& in, const std::vector<double>& out);
// ... and by counting every pair (quadratic: the CHECK of the first).
double auroc_by_pairs(const std::vector<double>& in, const std::vector<double>& out);

}  // namespace dgm::lesson
