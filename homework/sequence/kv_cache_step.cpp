// Homework, sequence chapter, exercise 3 (10 points): a sampling step with a key/value cache.
//   grade: make grade CHAPTER=sequence      (the math: docs/chapters/sequence.md, step 3, eq. 8)
#include "homework/sequence/exercises.h"

namespace hw::sequence {

// keys, values: the cache, [N, heads, t, d] for the t positions read so far (undefined Tensors,
// keys.defined() == false, before the first step). q, k, v: the new position's, [N, heads, 1, d].
//
//     keys   <- concat(keys, k) along the positions' axis (2); values likewise
//     out     = softmax(q keys^T / sqrt(d)) v           over all t + 1 positions (none is in the future)
//
// Return out [N, heads, 1, d] and leave the grown cache in keys and values. The new position comes
// after the old ones: the next step's attention reads the cache in position order.
Tensor kv_cache_step(Tensor& keys, Tensor& values, const Tensor& q, const Tensor& k, const Tensor& v) {
  DGM_TODO("kv_cache_step");
}

}  // namespace hw::sequence
