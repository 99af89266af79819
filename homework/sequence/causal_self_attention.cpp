// Homework, sequence chapter, exercise 1 (10 points): causal self-attention.
//   grade: make grade CHAPTER=sequence      (the math: docs/chapters/sequence.md, step 3)
#include "homework/sequence/exercises.h"

namespace hw::sequence {

// q, k, v: [N, heads, L, d]. For every position i, a weighted mean of the values of positions
// j <= i, weighted by how well the query of i matches the key of j:
//
//     scores = q k^T / sqrt(d)                 [N, heads, L, L]  (matmul, transpose of k's last two axes)
//     scores_ij = -infinity for j > i          (the future: e^-inf = 0 exactly)
//     A = softmax(scores) over j (the last axis), out = A v
//
// Engine ops: matmul, transpose, softmax, and a [L, L] tensor of 0 and -infinity added to the
// scores (it broadcasts). Every row of A must sum to 1 and give the future no weight at all.
Tensor causal_self_attention(const Tensor& q, const Tensor& k, const Tensor& v) {
  DGM_TODO("causal_self_attention");
}

}  // namespace hw::sequence
