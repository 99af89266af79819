// Homework, intro chapter, exercise 2 (10 points): the AUROC of a likelihood as a detector.
//   grade: make grade CHAPTER=intro      (the math: docs/chapters/intro.md, section 2)
#include "homework/intro/exercises.h"

namespace hw::intro {

// A density model can flag inputs unlike its training data: score each input by log p(x)
// and call the low ones out-of-distribution. How well the scores separate in-distribution
// inputs (`in`) from others (`out`) is the area under the ROC curve, which equals the
// probability that a random `in` scores above a random `out`, ties counting one half:
//
//     AUROC = ( #{(i, j): in_i > out_j} + 1/2 #{(i, j): in_i == out_j} ) / (|in| |out|)
//
// 1 separates perfectly, 0.5 is chance, below 0.5 ranks the wrong way round (the known
// failure of likelihoods, docs/chapters/intro.md). Counting every pair is O(n m); sorting
// both sets (or ranking the pooled scores: the Mann-Whitney U statistic) is O((n + m) log(n + m)).
// Both are accepted; the grader's largest case has 3000 x 3000 pairs.
double auroc(const std::vector<double>& in, const std::vector<double>& out) {
  DGM_TODO("auroc");
}

}  // namespace hw::intro
