// dgm/homework/engine/grader.cpp — the checks of the engine chapter's homework.
// Every check compares the student's function with a route that does not use it:
// finite differences (gradcheck), the closed form in long double, the engine's own
// sum_to and backward.
#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "autograd/gradcheck.h"
#include "autograd/random.h"
#include "homework/engine/exercises.h"

namespace hw::engine {

using dgm::DType;
using dgm::Generator;

namespace {

// ---------------------------------------------------------------- softplus through the student's backward
// The forward is the engine's softplus; the backward is the student's function.
struct StudentSoftplus : Node {
  dgm::SavedTensor x;
  std::function<Tensor(const Tensor&, const Tensor&)> backward_fn;
  const char* name() const override { return "student_softplus"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {backward_fn(x.unpack(*this), g)}; }
  void release_saved() override { x.reset(); }
};

Tensor student_softplus(const Tensor& x, const Functions& f) {
  Tensor out;
  {
    dgm::NoGradGuard no_grad;
    out = dgm::softplus(x);
  }
  if (!dgm::any_requires_grad({&x})) return out;
  auto node = std::make_shared<StudentSoftplus>();
  node->x = dgm::SavedTensor::input(x);
  node->backward_fn = f.softplus_backward;
  dgm::attach(out, node, {&x});
  return out;
}

long double sigmoid_ld(long double x) { return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x)); }


// ---------------------------------------------------------------- a product through the student's sum_to
struct StudentMul : Node {
  dgm::SavedTensor a, b;
  Shape a_shape, b_shape;
  std::function<Tensor(const Tensor&, const Shape&)> sum_to_fn;
  const char* name() const override { return "student_mul"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor av = a.unpack(*this), bv = b.unpack(*this);
    return {sum_to_fn(g * bv, a_shape), sum_to_fn(g * av, b_shape)};
  }
};

Tensor student_mul(const Tensor& a, const Tensor& b, const Functions& f) {
  Tensor out;
  {
    dgm::NoGradGuard no_grad;
    out = a * b;
  }
  if (!dgm::any_requires_grad({&a, &b})) return out;
  auto node = std::make_shared<StudentMul>();
  node->a = dgm::SavedTensor::input(a);
  node->b = dgm::SavedTensor::input(b);
  node->a_shape = a.shape();
  node->b_shape = b.shape();
  node->sum_to_fn = f.sum_to;
  dgm::attach(out, node, {&a, &b});
  return out;
}

// (g shape, target shape) pairs that broadcasting produces
const std::vector<std::pair<Shape, Shape>> kBroadcasts = {
    {{2, 3, 4}, {3, 4}}, {{2, 3, 4}, {2, 1, 4}}, {{2, 3, 4}, {1, 1}}, {{2, 3, 4}, {}},
    {{5}, {1}},          {{3, 4}, {3, 4}},       {{2, 1, 3}, {1, 3}}, {{4, 3}, {4, 1}},
};

// ---------------------------------------------------------------- graphs to sort
struct Graph {
  std::string name;
  Tensor output;
  std::vector<Tensor> leaves;
};

std::vector<Graph> graphs() {
  Generator gen(7);
  std::vector<Graph> gs;
  auto leaf = [&](Shape s) { return gen.normal(s, 0, 1, DType::Float64).set_requires_grad(true); };
  {
    Tensor x = leaf({4});
    gs.push_back({"a chain exp(tanh(2x))", dgm::sum(dgm::exp(dgm::tanh(x * 2.0))), {x}});
  }
  {
    Tensor x = leaf({3});
    Tensor a = x * 3.0;  // used three times
    gs.push_back({"a diamond a = 3x; exp(a) sin(a) + a", dgm::sum(dgm::exp(a) * dgm::sin(a) + a), {x}});
  }
  {
    Tensor x = leaf({3});
    Tensor a = x + 1.0, longer = a;
    for (int i = 0; i < 5; ++i) longer = dgm::tanh(longer);
    gs.push_back({"an uneven diamond tanh^5(a) + a", dgm::sum(longer + a), {x}});
  }
  {
    Tensor x = leaf({3, 2}), w = leaf({2, 2});
    Tensor h = dgm::matmul(x, w);
    gs.push_back({"two leaves (x w)^2 + w", dgm::sum(h * h) + dgm::sum(w), {x, w}});
  }
  return gs;
}

// Every node reachable from `output`, by the grader's own search.
std::unordered_set<Node*> reachable(const Tensor& output) {
  std::unordered_set<Node*> seen;
  std::vector<Node*> todo{output.grad_fn().get()};
  seen.insert(todo.back());
  while (!todo.empty()) {
    Node* n = todo.back();
    todo.pop_back();
    for (const auto& next : n->next)
      if (next && seen.insert(next.get()).second) todo.push_back(next.get());
  }
  return seen;
}

void expect_each_node_once(Expect& e, const Graph& g, const std::vector<Node*>& order) {
  const auto all = reachable(g.output);
  std::unordered_set<Node*> seen;
  for (Node* n : order) {
    if (!all.count(n)) {
      e.that(false, g.name + ": your order holds a node that is not in the graph (" + std::to_string(order.size()) +
                        " nodes returned)", "start from output.grad_fn() and follow node->next");
      return;
    }
    if (!seen.insert(n).second) {
      e.that(false, g.name + ": node '" + n->name() + "' appears twice", "keep a set of visited nodes");
      return;
    }
  }
  e.near(g.name + ": number of nodes", static_cast<double>(all.size()), static_cast<double>(order.size()), 0,
         "every node reachable through next (including the AccumulateGrad nodes of leaves), once");
}

void expect_parents_first(Expect& e, const Graph& g, const std::vector<Node*>& order) {
  std::unordered_map<Node*, size_t> position;
  for (size_t i = 0; i < order.size(); ++i) position[order[i]] = i;
  for (size_t i = 0; i < order.size(); ++i)
    for (const auto& next : order[i]->next) {
      if (!next) continue;
      auto it = position.find(next.get());
      if (it != position.end() && it->second < i) {
        e.that(false, g.name + ": '" + order[i]->name() + "' (position " + std::to_string(i) + ") sends a gradient to '" +
                          next->name() + "', which comes earlier (position " + std::to_string(it->second) + ")",
               "a node must come before its next nodes: reverse a post-order depth-first search (breadth-first is not enough)");
        return;
      }
    }
}

// Runs backward in the student's order by calling each node's backward rule, and
// compares the leaves' gradients with the engine's own backward.
void expect_backward_in_order(Expect& e, const Graph& g, const std::vector<Node*>& order) {
  const std::vector<Tensor> want = dgm::grad({g.output}, g.leaves, {}, /*retain_graph=*/true);
  dgm::NoGradGuard no_grad;
  std::unordered_map<Node*, Tensor> grads;
  grads[g.output.grad_fn().get()] = Tensor::ones(g.output.shape(), g.output.dtype());
  std::unordered_map<dgm::TensorImpl*, Tensor> leaf_grads;
  for (Node* n : order) {
    auto it = grads.find(n);
    if (it == grads.end()) continue;  // (a node no gradient reached yet: the order is wrong, the values will show it)
    if (auto* acc = dynamic_cast<dgm::AccumulateGrad*>(n)) {
      leaf_grads[acc->leaf.get()] = it->second;
      continue;
    }
    const std::vector<Tensor> in = n->backward(it->second);
    for (size_t i = 0; i < n->next.size() && i < in.size(); ++i) {
      if (!n->next[i] || !in[i].defined()) continue;
      Tensor& slot = grads[n->next[i].get()];
      slot = slot.defined() ? slot + in[i] : in[i];
    }
  }
  for (size_t l = 0; l < g.leaves.size(); ++l) {
    auto it = leaf_grads.find(g.leaves[l].impl_ptr().get());
    Tensor got = it == leaf_grads.end() ? Tensor::zeros(g.leaves[l].shape(), DType::Float64) : it->second;
    e.tensors_near(g.name + ": gradient of leaf " + std::to_string(l) + " when backward runs in your order", want[l],
                   got, 1e-10, "a node ran before all the gradients flowing into it had arrived");
  }
}

}  // namespace

std::vector<Exercise> exercises(const Functions& f) {
  std::vector<Exercise> list;

  // ---------------------------------------------------------------- softplus_backward
  list.push_back({"softplus_backward", "homework/engine/softplus_backward.cpp", 10, {}});
  auto& sp = list.back().checks;
  sp.push_back({"returns a tensor shaped like x", 1, [f](Expect& e) {
                  Generator gen(1);
                  const Tensor x = gen.normal({3, 4}, 0, 1, DType::Float64), g = gen.normal({3, 4}, 0, 1, DType::Float64);
                  e.shape_is("softplus_backward(x [3, 4], g [3, 4])", f.softplus_backward(x, g), x.shape(),
                             "multiply g by the local derivative elementwise");
                }});
  sp.push_back({"equals g * sigmoid(x), computed in long double, for x in [-30, 30]", 2, [f](Expect& e) {
                  for (uint64_t seed : {1, 2, 3}) {
                    Generator gen(seed);
                    const Tensor x = gen.uniform({50}, -30, 30, DType::Float64), g = gen.normal({50}, 0, 1, DType::Float64);
                    std::vector<double> want(50);
                    for (int64_t i = 0; i < 50; ++i) want[i] = static_cast<double>(g.at(i) * sigmoid_ld(x.at(i)));
                    e.set_context("seed " + std::to_string(seed) + ": ");
                    e.tensors_near("dL/dx", Tensor::from_vector(want, {50}), f.softplus_backward(x, g), 1e-12,
                                   "d softplus / dx = e^x / (1 + e^x) = sigmoid(x), times the incoming g");
                  }
                }, essential});
  sp.push_back({"gradcheck: the engine's backward through it matches finite differences", 3, [f](Expect& e) {
                  for (uint64_t seed : {1, 2, 3}) {
                    Generator gen(seed);
                    const Tensor x = gen.normal({seed == 2 ? int64_t{2} : int64_t{5}, 3}, 0, 2, DType::Float64);
                    const Tensor w = gen.normal(x.shape(), 0, 1, DType::Float64);
                    const auto report = dgm::gradcheck([&](const std::vector<Tensor>& in) { return student_softplus(in[0], f) * w; }, {x});
                    e.that(report.ok, "seed " + std::to_string(seed) + ": " + report.str(),
                           "each output's gradient must reach only its own input: multiply g (not 1) by the derivative");
                  }
                }, essential});
  sp.push_back({"stable at |x| = 800: finite, g * 0 and g * 1", 2, [f](Expect& e) {
                  const Tensor x = Tensor::from_vector(std::vector<double>{-800, -50, 0, 50, 800}, {5});
                  const Tensor g = Tensor::full({5}, 2.0, DType::Float64);
                  const Tensor got = f.softplus_backward(x, g);
                  e.that(got.defined() && all_finite(got), "at x = [-800, -50, 0, 50, 800] you gave " +
                         (got.defined() ? got.str() : std::string("an undefined tensor")),
                         "e^800 overflows to inf, and inf / inf is NaN: use dgm::sigmoid, which is written to saturate");
                  const std::vector<double> want{0, 2 * static_cast<double>(sigmoid_ld(-50)), 1, 2, 2};
                  e.tensors_near("dL/dx with g = 2", Tensor::from_vector(want, {5}), got, 1e-12,
                                 "sigmoid(-800) = 0 and sigmoid(800) = 1");
                }, essential});
  sp.push_back({"gradgradcheck: the second derivative, so the backward is made of engine ops", 2, [f](Expect& e) {
                  Generator gen(4);
                  const Tensor x = gen.normal({4, 2}, 0, 1.5, DType::Float64);
                  const auto report = dgm::gradgradcheck([&](const std::vector<Tensor>& in) { return student_softplus(in[0], f); }, {x});
                  e.that(report.ok, report.str(),
                         "compute it with engine ops (g * dgm::sigmoid(x)): a tensor filled through data<double>() has no graph, "
                         "so its own gradient is lost");
                }, essential});

  // ---------------------------------------------------------------- sum_to
  list.push_back({"sum_to", "homework/engine/sum_to.cpp", 10, {}});
  auto& st = list.back().checks;
  st.push_back({"the result has the target shape, for 8 broadcasts", 1, [f](Expect& e) {
                  Generator gen(1);
                  for (const auto& [from, to] : kBroadcasts)
                    e.shape_is("sum_to(g " + from.str() + ", " + to.str() + ")",
                               f.sum_to(gen.normal(from, 0, 1, DType::Float64), to), to,
                               "sum the leading axes away, keep (as 1) the axes where the target has 1");
                }});
  st.push_back({"the values are the engine's sum_to, for 8 broadcasts and 3 seeds", 3, [f](Expect& e) {
                  for (uint64_t seed : {1, 2, 3}) {
                    Generator gen(seed);
                    e.set_context("seed " + std::to_string(seed) + ": ");
                    for (const auto& [from, to] : kBroadcasts) {
                      const Tensor g = gen.normal(from, 0, 1, DType::Float64);
                      e.tensors_near("sum_to(g " + from.str() + ", " + to.str() + ")", dgm::sum_to(g, to), f.sum_to(g, to),
                                     1e-12, "every element of the small tensor gets the sum of all the gradients it was copied to");
                    }
                  }
                }, essential});
  st.push_back({"gradcheck: a broadcast product a * b whose backward uses your sum_to", 4, [f](Expect& e) {
                  const std::vector<std::pair<Shape, Shape>> pairs = {{{3, 1}, {2, 3, 4}}, {{4}, {3, 4}}, {{}, {2, 2}}, {{2, 1, 3}, {4, 1}}};
                  Generator gen(5);
                  for (const auto& [sa, sb] : pairs) {
                    const Tensor a = gen.normal(sa, 0, 1, DType::Float64), b = gen.normal(sb, 0, 1, DType::Float64);
                    const auto report = dgm::gradcheck([&](const std::vector<Tensor>& in) { return student_mul(in[0], in[1], f); }, {a, b});
                    e.that(report.ok, "a " + sa.str() + " * b " + sb.str() + ": " + report.str(),
                           "the gradient of a broadcast input is the sum over the copies");
                  }
                }, essential});
  st.push_back({"a gradient that cannot come from the shape ([2, 3] to [4]) is an error naming both shapes", 2, [f](Expect& e) {
                  const Tensor g = Tensor::ones({2, 3}, DType::Float64);
                  try {
                    f.sum_to(g, Shape{4});
                    e.that(false, "sum_to(g [2, 3], [4]) returned instead of throwing", "throw dgm::Error(\"sum_to: ... \" + g.shape().str() + ...)");
                  } catch (const NotImplemented&) {
                    throw;
                  } catch (const std::exception& ex) {
                    const std::string m = ex.what();
                    e.that(m.find("[2, 3]") != std::string::npos && m.find("[4]") != std::string::npos,
                           "the message '" + m + "' does not name both shapes [2, 3] and [4]", "Shape::str() gives \"[2, 3]\"");
                  }
                }});

  // ---------------------------------------------------------------- topological_sort
  list.push_back({"topological_sort", "homework/engine/topological_sort.cpp", 10, {}});
  auto& ts = list.back().checks;
  ts.push_back({"every node reachable from the output, each once (4 graphs)", 3, [f](Expect& e) {
                  for (const auto& g : graphs()) expect_each_node_once(e, g, f.topological_sort(g.output));
                }, essential});
  ts.push_back({"every node comes before the nodes its gradient flows into (4 graphs)", 3, [f](Expect& e) {
                  for (const auto& g : graphs()) {
                    const auto order = f.topological_sort(g.output);
                    expect_each_node_once(e, g, order);
                    expect_parents_first(e, g, order);
                  }
                }, essential});
  ts.push_back({"backward run in your order gives the engine's gradients (4 graphs)", 3, [f](Expect& e) {
                  for (const auto& g : graphs()) expect_backward_in_order(e, g, f.topological_sort(g.output));
                }, essential});
  ts.push_back({"a chain 3000 nodes deep", 1, [f](Expect& e) {
                  Tensor x = Tensor::from_vector(std::vector<double>{0.1, 0.2}, {2}).set_requires_grad(true);
                  Tensor y = x;
                  for (int i = 0; i < 3000; ++i) y = dgm::sin(y);
                  const Graph g{"sin^3000(x)", dgm::sum(y), {x}};
                  const auto order = f.topological_sort(g.output);
                  expect_each_node_once(e, g, order);
                  expect_parents_first(e, g, order);
                }});
  // No exercise may call the library's own implementation of itself (grader.h, add_library_check).
  for (auto& ex : list) {
    if (ex.name == "softplus_backward") add_library_check(ex, {"unary_grad"});
    if (ex.name == "sum_to") add_library_check(ex, {"dgm::sum_to"});
  }
  return list;
}

}  // namespace hw::engine
