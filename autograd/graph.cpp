// dgm/autograd/graph.cpp — recording ops and running backward.
#include "autograd/graph.h"

#include <string>
#include <unordered_map>

#include "autograd/ops.h"

namespace dgm {

// ----------------------------------------------------------------- grad mode
namespace {
thread_local bool g_grad_enabled = true;
uint64_t g_node_sequence = 0;
}  // namespace

bool GradMode::is_enabled() { return g_grad_enabled; }
void GradMode::set_enabled(bool on) { g_grad_enabled = on; }

AccumulateGrad::AccumulateGrad(std::shared_ptr<TensorImpl> l) : leaf(std::move(l)) {
  out_shape = leaf->shape;
  out_dtype = leaf->dtype;
}

// ----------------------------------------------------------------- SavedTensor
SavedTensor SavedTensor::input(const Tensor& t) {
  SavedTensor s;
  if (t.is_leaf()) {
    s.leaf_ = t.impl_ptr();
  } else {
    s.storage_ = t.impl().storage;
    s.fn_ = t.grad_fn();
  }
  s.shape_ = t.shape();
  s.dtype_ = t.dtype();
  s.requires_grad_ = t.requires_grad();
  s.version_ = t.impl().storage->version;
  return s;
}

SavedTensor SavedTensor::output(const Tensor& t) {
  SavedTensor s;
  s.storage_ = t.impl().storage;
  s.weak_fn_ = t.grad_fn();
  s.shape_ = t.shape();
  s.dtype_ = t.dtype();
  s.requires_grad_ = t.requires_grad();
  s.version_ = s.storage_->version;
  return s;
}

Tensor SavedTensor::unpack(const Node& saver) const {
  const std::shared_ptr<Storage>& st = leaf_ ? leaf_->storage : storage_;
  if (!st)
    throw Error(std::string(saver.name()) +
                " backward: its saved tensors were already freed by an earlier backward; "
                "pass retain_graph=true to the first backward to run it again");
  if (st->version != version_)
    throw Error(std::string(saver.name()) + " backward: a tensor it saved for backward was modified in place by " +
                (st->last_inplace_op ? st->last_inplace_op : "an in-place op") + " (its version is " +
                std::to_string(st->version) + ", " + saver.name() + " saved version " +
                std::to_string(version_) + "); clone the tensor before modifying it");
  if (leaf_) return Tensor(leaf_);
  auto t = std::make_shared<TensorImpl>();
  t->shape = shape_;
  t->dtype = dtype_;
  t->storage = storage_;
  t->requires_grad = requires_grad_;
  t->grad_fn = fn_ ? fn_ : weak_fn_.lock();
  return Tensor(std::move(t));
}

void SavedTensor::reset() {
  leaf_.reset();
  storage_.reset();
  fn_.reset();
  weak_fn_.reset();
}

// ----------------------------------------------------------------- recording
bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

std::shared_ptr<Node> gradient_edge(const Tensor& t) {
  if (t.grad_fn()) return t.grad_fn();
  auto acc = t.impl().grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t.impl_ptr());
    t.impl().grad_accumulator = acc;
  }
  return acc;
}

static void finish_attach(Tensor& out, const std::shared_ptr<Node>& node) {
  node->out_shape = out.shape();
  node->out_dtype = out.dtype();
  node->out_storage = out.impl().storage;
  node->sequence = ++g_node_sequence;
  out.impl().requires_grad = true;
  out.impl().grad_fn = node;
}

void attach(Tensor& out, const std::shared_ptr<Node>& node,
            std::initializer_list<const Tensor*> inputs) {
  node->next.reserve(inputs.size());
  for (const Tensor* t : inputs)
    node->next.push_back(t && t->defined() && t->requires_grad() ? gradient_edge(*t) : nullptr);
  finish_attach(out, node);
}

void attach(Tensor& out, const std::shared_ptr<Node>& node, const std::vector<Tensor>& inputs) {
  node->next.reserve(inputs.size());
  for (const Tensor& t : inputs)
    node->next.push_back(t.defined() && t.requires_grad() ? gradient_edge(t) : nullptr);
  finish_attach(out, node);
}

// ----------------------------------------------------------------- backward
namespace {

// Adds `g` into a leaf's .grad. Without create_graph the stored gradient owns
// its buffer (a gradient shared with another leaf is copied first), and later
// accumulations add into it in place.
// True when nothing but `t` refers to its data: no other handle, no view,
// no graph (so adding into it in place changes nothing anyone else sees).
bool exclusively_owned(const Tensor& t) {
  return t.impl_ptr().use_count() == 1 && t.impl().storage.use_count() == 1 && t.is_leaf() && !t.requires_grad();
}

void accumulate_into_leaf(TensorImpl& leaf, Tensor g, bool create_graph) {
  if (!leaf.grad) {
    if (create_graph) {
      leaf.grad = g.impl_ptr();
    } else {
      leaf.grad = exclusively_owned(g) ? g.impl_ptr() : g.contiguous_copy().impl_ptr();
    }
    return;
  }
  Tensor current(leaf.grad);
  if (create_graph) {
    leaf.grad = add(current, g).impl_ptr();
  } else {
    NoGradGuard ng;
    current.add_(g.detach());
  }
}

struct RunResult {
  std::unordered_map<Node*, Tensor> captured;
};

// The nodes a pass has collected; on the way out (normally or by an
// exception) their scratch state is cleared, so nothing of one pass leaks
// into the next.
struct PassNodes {
  std::vector<Node*> nodes;
  ~PassNodes() {
    for (Node* n : nodes) n->run = Node::BackwardState{};
  }
  void add(Node* n) {
    n->run.reached = true;
    nodes.push_back(n);
  }
};

thread_local int g_running_passes = 0;
struct PassDepth {
  PassDepth() { ++g_running_passes; }
  ~PassDepth() { --g_running_passes; }
};

RunResult run_backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs,
                       bool retain_graph, bool create_graph,
                       const std::vector<std::shared_ptr<Node>>* capture, bool accumulate_leaves) {
  if (!grad_outputs.empty() && grad_outputs.size() != outputs.size())
    throw Error("backward: " + std::to_string(outputs.size()) + " outputs but " +
                std::to_string(grad_outputs.size()) + " output gradients");
  // Each node keeps the pass's state (Node::run), so passes cannot nest.
  if (g_running_passes > 0)
    throw Error("backward: called from inside a node's backward; dgm runs one backward pass at a time");
  PassDepth depth;
  // A leaf's AccumulateGrad is held weakly by the leaf: `roots` holds the
  // roots for the pass (declared before `pass`, so it outlives the cleanup);
  // every other node is held by the edges of the nodes above it.
  std::vector<std::shared_ptr<Node>> roots;
  PassNodes pass;

  // 1. Seed the roots.
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& out = outputs[i];
    if (!out.requires_grad())
      throw Error("backward: output " + std::to_string(i) + " " + out.shape().str() +
                  " does not require grad (no input of it requires grad, or it was computed "
                  "under NoGradGuard)");
    Tensor g = i < grad_outputs.size() ? grad_outputs[i] : Tensor();
    if (!g.defined()) {
      if (out.numel() != 1)
        throw Error("backward: output " + out.shape().str() +
                    " has more than one element; pass its gradient explicitly");
      g = Tensor::ones(out.shape(), out.dtype());
    } else if (g.shape() != out.shape() || g.dtype() != out.dtype()) {
      throw Error("backward: gradient " + g.shape().str() + " " + dtype_name(g.dtype()) +
                  " does not match output " + out.shape().str() + " " + dtype_name(out.dtype()));
    }
    std::shared_ptr<Node> node = gradient_edge(out);
    if (!node->run.reached) {
      pass.add(node.get());
      node->run.grad = g;
      roots.push_back(node);
    } else {
      GradModeGuard gm(create_graph);
      node->run.grad = add(node->run.grad, g);
    }
  }

  // 2. Collect the graph iteratively and count, for every node, the edges
  //    that reach it from other nodes of the graph.
  std::vector<Node*> stack;
  for (auto& r : roots) stack.push_back(r.get());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (n->released)
      throw Error(std::string("backward: the graph through ") + n->name() +
                  " was already freed by an earlier backward; pass retain_graph=true to the "
                  "first backward to run backward through it again");
    for (auto& nx : n->next) {
      if (!nx) continue;
      ++nx->run.pending;
      if (!nx->run.reached) {
        pass.add(nx.get());
        stack.push_back(nx.get());
      }
    }
  }

  // 3. Run the nodes in topological order (Kahn's algorithm).
  GradModeGuard grad_mode(create_graph);
  RunResult result;
  std::vector<Node*> ready;
  for (auto& r : roots)
    if (r->run.pending == 0) ready.push_back(r.get());
  std::unordered_map<Node*, bool> wanted;
  if (capture)
    for (auto& c : *capture) wanted[c.get()] = true;

  while (!ready.empty()) {
    Node* n = ready.back();
    ready.pop_back();
    Tensor g = std::move(n->run.grad);
    n->run.grad = Tensor();
    if (capture && wanted.count(n)) result.captured[n] = g;

    if (auto* acc = dynamic_cast<AccumulateGrad*>(n)) {
      if (accumulate_leaves && g.defined()) accumulate_into_leaf(*acc->leaf, std::move(g), create_graph);
      continue;
    }
    if (g.defined() && !create_graph && n->next.size() == 1 && n->next[0]) {  // a select into a gathered gradient
      Node* nx = n->next[0].get();
      Tensor& sum = nx->run.grad;
      if (sum.defined() && exclusively_owned(sum) && n->add_gradient_into(g, sum)) {
        g = Tensor();
        if (--nx->run.pending == 0) ready.push_back(nx);
        if (!retain_graph) {
          n->release_saved();
          n->released = true;
        }
        continue;
      }
    }
    // A node reached only through inputs that received no gradient passes none on.
    std::vector<Tensor> grads = g.defined() ? n->backward(g) : std::vector<Tensor>(n->next.size());
    g = Tensor();
    if (grads.size() != n->next.size())
      throw Error(std::string("internal: ") + n->name() + " backward returned " +
                  std::to_string(grads.size()) + " gradients for " + std::to_string(n->next.size()) +
                  " inputs");
    for (size_t i = 0; i < grads.size(); ++i) {
      Node* nx = n->next[i].get();
      if (!nx) continue;
      if (grads[i].defined()) {
        if (grads[i].shape() != nx->out_shape)
          throw Error(std::string("internal: ") + n->name() + " backward produced a gradient of shape " +
                      grads[i].shape().str() + " for an input of shape " + nx->out_shape.str());
        Tensor& sum = nx->run.grad;
        if (!sum.defined())
          sum = std::move(grads[i]);
        else if (!create_graph && exclusively_owned(sum))
          sum.add_(grads[i]);  // no graph is recorded: add into the buffer we alone hold
        else
          sum = add(sum, grads[i]);
      }
      if (--nx->run.pending == 0) ready.push_back(nx);
    }
    if (!retain_graph) {
      n->release_saved();
      n->released = true;
    }
  }
  return result;
}

}  // namespace

void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs,
              bool retain_graph, bool create_graph) {
  run_backward(outputs, grad_outputs, retain_graph || create_graph, create_graph, nullptr, true);
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool retain_graph,
                         bool create_graph) {
  std::vector<std::shared_ptr<Node>> targets;
  for (size_t j = 0; j < inputs.size(); ++j) {
    if (!inputs[j].requires_grad())
      throw Error("grad: input " + std::to_string(j) + " " + inputs[j].shape().str() +
                  " does not require grad");
    targets.push_back(gradient_edge(inputs[j]));
  }
  RunResult r = run_backward(outputs, grad_outputs, retain_graph || create_graph, create_graph,
                             &targets, false);
  std::vector<Tensor> out;
  for (size_t j = 0; j < inputs.size(); ++j) {
    auto it = r.captured.find(targets[j].get());
    if (it != r.captured.end() && it->second.defined())
      out.push_back(it->second);
    else
      out.push_back(Tensor::zeros(inputs[j].shape(), inputs[j].dtype()));
  }
  return out;
}

}  // namespace dgm
