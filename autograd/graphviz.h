// dgm/autograd/graphviz.h — the graph behind a tensor, as Graphviz DOT.
//
// Like micrograd's draw_dot: one box per tensor (its name, shape, and values
// when it has at most `max_values` elements) and one ellipse per op, with
// edges in the direction data flows. Render with `dot -Tpng graph.dot -o graph.png`.
#pragma once

#include <string>

#include "autograd/tensor.h"

namespace dgm {

std::string to_dot(const Tensor& root, int max_values = 8);

}  // namespace dgm
