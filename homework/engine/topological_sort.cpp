// Homework, engine chapter, exercise 3 (10 points): the order of the backward pass.
//   grade: make grade CHAPTER=engine        (the math: docs/chapters/engine.md, sections 1-2)
#include "homework/engine/exercises.h"

namespace hw::engine {

// Every Node of the graph that produced `output` (start at output.grad_fn()), each
// exactly once, ordered so that a node comes BEFORE every node in its `next` list:
// then, when backward reaches a node, every gradient that flows into it has arrived.
//
// - node->next[i] is where input i's gradient goes; it may be nullptr (an input
//   that needs no gradient): skip those. Leaves appear as AccumulateGrad nodes.
// - A node can be reached along several paths (a diamond: a = 3x; y = exp(a) * sin(a)):
//   remember which nodes you have visited.
// - The classic: a depth-first search that appends a node after all its next nodes
//   (post-order), then reverse the list. A breadth-first order is NOT enough.
// - Graphs can be thousands of nodes deep; recursion is fine up to a few thousand.
std::vector<Node*> topological_sort(const Tensor& output) {
  DGM_TODO("topological_sort");
}

}  // namespace hw::engine
