// dgm/autograd/graphviz.cpp — to_dot().
#include "autograd/graphviz.h"

#include <sstream>
#include <unordered_map>

#include "autograd/graph.h"

namespace dgm {

namespace {

std::string values(const std::shared_ptr<Storage>& st, const Shape& shape, DType dtype, int max_values) {
  if (!st || shape.numel() > max_values) return "";
  std::ostringstream os;
  os.precision(4);
  os << "\\n{";
  for (int64_t i = 0; i < shape.numel(); ++i) {
    if (i) os << ", ";
    if (dtype == DType::Float32) os << static_cast<const float*>(st->data)[i];
    else if (dtype == DType::Float64) os << static_cast<const double*>(st->data)[i];
    else os << static_cast<const int64_t*>(st->data)[i];
  }
  os << "}";
  return os.str();
}

std::string escape(const std::string& s) {
  std::string r;
  for (char c : s) {
    if (c == '"' || c == '\\') r.push_back('\\');
    r.push_back(c);
  }
  return r;
}

}  // namespace

std::string to_dot(const Tensor& root, int max_values) {
  std::ostringstream os;
  os << "digraph dgm {\n  rankdir=LR;\n  node [fontname=\"monospace\", fontsize=10];\n";
  std::unordered_map<const Node*, int> ids;
  std::vector<const Node*> stack;
  auto id_of = [&](const Node* n) {
    auto [it, inserted] = ids.emplace(n, static_cast<int>(ids.size()));
    if (inserted) stack.push_back(n);
    return it->second;
  };
  auto leaf_box = [&](const TensorImpl& t, int id) {
    os << "  t" << id << " [shape=box, style=filled, fillcolor=\"#e8f0ff\", label=\""
       << escape(t.name.empty() ? "leaf" : t.name) << " " << t.shape.str()
       << values(t.storage, t.shape, t.dtype, max_values) << "\"];\n";
  };
  if (!root.grad_fn()) {
    leaf_box(root.impl(), 0);
    os << "}\n";
    return os.str();
  }
  id_of(root.grad_fn().get());
  while (!stack.empty()) {
    const Node* n = stack.back();
    stack.pop_back();
    const int id = ids.at(n);
    if (auto* acc = dynamic_cast<const AccumulateGrad*>(n)) {
      leaf_box(*acc->leaf, id);
      continue;
    }
    std::string label = n == root.grad_fn().get() && !root.name().empty() ? root.name() + " " : "";
    os << "  op" << id << " [shape=ellipse, label=\"" << n->name() << "\"];\n";
    os << "  t" << id << " [shape=box, label=\"" << escape(label) << n->out_shape.str()
       << values(n->out_storage.lock(), n->out_shape, n->out_dtype, max_values) << "\"];\n";
    os << "  op" << id << " -> t" << id << ";\n";
    for (auto& nx : n->next) {
      if (!nx) continue;
      os << "  t" << id_of(nx.get()) << " -> op" << id << ";\n";
    }
  }
  os << "}\n";
  return os.str();
}

}  // namespace dgm
