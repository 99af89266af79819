// dgm/autograd/graph.h — the dynamic graph: nodes, grad mode, saved tensors,
// and the backward pass.
//
// Every differentiable op that runs while grad mode is on and one of its
// inputs requires a gradient records a Node. The Node keeps, per input, an
// edge to the node that will receive that input's gradient (the input's own
// grad_fn, or for a leaf the AccumulateGrad node that adds into .grad), plus
// whatever the op saved for its backward rule. Backward rules are written
// with the engine's own ops, so running them in grad mode builds a graph of
// the gradient itself (double backward).
#pragma once

#include <memory>
#include <vector>

#include "autograd/tensor.h"

namespace dgm {

// ----------------------------------------------------------------- grad mode
struct GradMode {
  static bool is_enabled();
  static void set_enabled(bool on);
};

// Turns graph recording off for its scope (evaluation, optimizer updates).
class NoGradGuard {
 public:
  NoGradGuard() : prev_(GradMode::is_enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// Sets grad mode to `on` for its scope.
class GradModeGuard {
 public:
  explicit GradModeGuard(bool on) : prev_(GradMode::is_enabled()) { GradMode::set_enabled(on); }
  ~GradModeGuard() { GradMode::set_enabled(prev_); }
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool prev_;
};

// ----------------------------------------------------------------- Node
class Node : public std::enable_shared_from_this<Node> {
 public:
  Node();
  virtual ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // The op's name, as errors and to_dot() show it ("matmul", "tanh").
  virtual const char* name() const = 0;
  // Given dL/d(output), returns dL/d(input i) for every input (an undefined
  // Tensor where an input gets no gradient). Written with engine ops.
  virtual std::vector<Tensor> backward(const Tensor& grad_output) = 0;
  // Drops what the op saved for backward (after a backward without retain_graph).
  virtual void release_saved() {}
  // For an op whose one input's gradient is grad_output placed at a few positions (select): adds it
  // into `sum`, the gradient already gathered for that input (a buffer only the engine holds, outside
  // create_graph), and returns true; false leaves it to backward(). A loop over the rows of a tensor
  // then costs a row per step in the backward, not a zero-filled copy of the whole tensor per row.
  virtual bool add_gradient_into(const Tensor& grad_output, Tensor& sum) {
    (void)grad_output, (void)sum;
    return false;
  }

  std::vector<std::shared_ptr<Node>> next;  // per input: where its gradient goes (null: none)
  Shape out_shape;                          // the output this node produced
  DType out_dtype = DType::Float32;
  std::weak_ptr<Storage> out_storage;       // the output's data while it lives (for to_dot)
  bool released = false;                    // saved tensors already freed
  uint64_t sequence = 0;                    // creation order

  // Scratch state of the backward pass running through this node (graph.cpp
  // sets and clears it; outside a backward it is empty).
  struct BackwardState {
    bool reached = false;  // collected into the running pass
    int pending = 0;       // edges from not yet run nodes that still lead here
    Tensor grad;           // the gradient summed so far
  } run;
};

// A leaf's gradient sink: adds the incoming gradient into leaf.grad.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> leaf);
  const char* name() const override { return "AccumulateGrad"; }
  std::vector<Tensor> backward(const Tensor&) override { return {}; }
  std::shared_ptr<TensorImpl> leaf;
};

// ----------------------------------------------------------------- SavedTensor
// What a backward rule keeps of a tensor. It remembers the storage version at
// save time; unpacking after an in-place change throws, naming both ops.
// A leaf is kept as itself (so second-order gradients reach it). Any other
// tensor is kept as its data plus its producing node: strongly for an input
// (that node is also one of the saver's edges), weakly for the saver's own
// output (a strong edge would be a cycle). Unpacking rebuilds the handle.
class SavedTensor {
 public:
  SavedTensor() = default;
  static SavedTensor input(const Tensor& t);
  static SavedTensor output(const Tensor& t);  // t.grad_fn() must be the saving node
  Tensor unpack(const Node& saver) const;
  void reset();
  bool defined() const { return leaf_ != nullptr || storage_ != nullptr; }

 private:
  std::shared_ptr<TensorImpl> leaf_;  // a saved leaf
  std::shared_ptr<Storage> storage_;  // otherwise: the data ...
  std::shared_ptr<Node> fn_;          // ... and the input's producer, or
  std::weak_ptr<Node> weak_fn_;       // ... the output's producer (the saver)
  Shape shape_;
  DType dtype_ = DType::Float32;
  bool requires_grad_ = false;
  uint64_t version_ = 0;
};

// ----------------------------------------------------------------- recording
// True when an op with these inputs must record a node.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);
// Wires `node` as the producer of `out`: edges to the inputs' gradient sinks,
// out.requires_grad = true. Call only when any_requires_grad(...) was true.
void attach(Tensor& out, const std::shared_ptr<Node>& node,
            std::initializer_list<const Tensor*> inputs);
void attach(Tensor& out, const std::shared_ptr<Node>& node, const std::vector<Tensor>& inputs);
// The node that receives a gradient for `t` (its grad_fn, or its AccumulateGrad).
std::shared_ptr<Node> gradient_edge(const Tensor& t);

// ----------------------------------------------------------------- backward
// Backpropagates `grad_outputs` from `outputs`, accumulating into the .grad of
// every leaf that requires grad. Iterative (no recursion), each node once.
void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs,
              bool retain_graph = false, bool create_graph = false);

// Returns d(sum_i <outputs_i, grad_outputs_i>)/d(inputs_j) without touching
// any .grad (PyTorch's torch.autograd.grad). An input the outputs do not
// depend on gets zeros. With create_graph the results are differentiable.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {},
                         bool retain_graph = false, bool create_graph = false);

}  // namespace dgm
