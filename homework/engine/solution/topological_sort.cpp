// Reference solution: homework/engine/topological_sort.cpp.
#include "homework/engine/exercises.h"

#include <algorithm>
#include <unordered_set>
#include <utility>

namespace hw::engine {

std::vector<Node*> topological_sort(const Tensor& output) {
  std::vector<Node*> order;
  if (!output.grad_fn()) return order;
  std::unordered_set<Node*> visited;
  // an explicit stack of (node, index of the next edge to follow): deep graphs cannot overflow it
  std::vector<std::pair<Node*, size_t>> stack{{output.grad_fn().get(), 0}};
  visited.insert(output.grad_fn().get());
  while (!stack.empty()) {
    auto& [node, edge] = stack.back();
    if (edge < node->next.size()) {
      Node* child = node->next[edge++].get();
      if (child && visited.insert(child).second) stack.push_back({child, 0});
    } else {
      order.push_back(node);  // post-order: after everything it leads to
      stack.pop_back();
    }
  }
  std::reverse(order.begin(), order.end());
  return order;
}

}  // namespace hw::engine
