// dgm/autograd/tensor.h — the Tensor handle, its shape, its storage.
//
// A Tensor is a cheap handle (a shared pointer) to a TensorImpl: a shape, a
// dtype, a flat row-major buffer (Storage), and — for autograd — whether it
// requires a gradient, its accumulated .grad, and the Node that produced it.
// No xtensor type appears here: kernels wrap the flat buffer inside the .cpp
// files, so everything that includes this header compiles fast.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace dgm {

// ----------------------------------------------------------------- dtype
enum class DType : uint8_t { Float32, Float64, Int64 };
const char* dtype_name(DType d);           // "float32", "float64", "int64"
size_t dtype_size(DType d);                // bytes per element
inline bool is_floating(DType d) { return d != DType::Int64; }

// ----------------------------------------------------------------- Shape
// A small inline array of dimensions (at most kMaxDims), so that creating a
// tensor does not allocate for its shape.
class Shape {
 public:
  static constexpr size_t kMaxDims = 8;
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  explicit Shape(const std::vector<int64_t>& dims);

  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  int64_t operator[](size_t i) const { return d_[i]; }
  int64_t& operator[](size_t i) { return d_[i]; }
  const int64_t* begin() const { return d_.data(); }
  const int64_t* end() const { return d_.data() + n_; }
  void push_back(int64_t v);
  void insert(size_t pos, int64_t v);
  void erase(size_t pos);
  int64_t numel() const;
  std::vector<int64_t> vec() const { return {begin(), end()}; }
  std::string str() const;  // "[128, 784]"
  bool operator==(const Shape& o) const;
  bool operator!=(const Shape& o) const { return !(*this == o); }

 private:
  std::array<int64_t, kMaxDims> d_{};
  size_t n_ = 0;
};

// Row-major (C order) element strides of a shape.
std::vector<int64_t> contiguous_strides(const Shape& s);
// NumPy broadcasting of two shapes; throws naming `op` and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Normalises a possibly negative axis against `ndim`; throws naming `op`.
size_t normalize_axis(int64_t axis, size_t ndim, const char* op);

// ----------------------------------------------------------------- errors
// Every error the engine raises about its inputs is a dgm::Error whose
// message starts with the op's name ("matmul: cannot multiply ...").
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ----------------------------------------------------------------- Storage
// A flat, 64-byte-aligned buffer. `version` counts in-place modifications,
// so that a backward rule can tell that a tensor it saved has changed.
struct Storage {
  explicit Storage(size_t nbytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data = nullptr;
  size_t nbytes = 0;
  uint64_t version = 0;
  const char* last_inplace_op = nullptr;  // name of the op that last modified it in place
};

class Node;
class Tensor;

struct TensorImpl {
  Shape shape;
  DType dtype = DType::Float32;
  std::shared_ptr<Storage> storage;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;       // accumulated gradient (leaves)
  std::shared_ptr<Node> grad_fn;          // the op that produced it (non-leaves)
  std::weak_ptr<Node> grad_accumulator;   // leaves: the node that accumulates into .grad
  std::string name;                       // optional label, shown by to_dot()

  TensorImpl();
  ~TensorImpl();
  TensorImpl(const TensorImpl&) = delete;
  TensorImpl& operator=(const TensorImpl&) = delete;
};

// ----------------------------------------------------------------- Tensor
class Tensor {
 public:
  Tensor() = default;  // undefined (no storage); `defined()` is false
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // --- creation (all contiguous, row-major)
  static Tensor empty(const Shape& shape, DType dtype = DType::Float32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::Float32);
  static Tensor ones(const Shape& shape, DType dtype = DType::Float32);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::Float32);
  static Tensor scalar(double value, DType dtype = DType::Float32);  // shape []
  static Tensor from_vector(const std::vector<float>& v, const Shape& shape);
  static Tensor from_vector(const std::vector<double>& v, const Shape& shape);
  static Tensor from_indices(const std::vector<int64_t>& v, const Shape& shape);  // int64
  static Tensor arange(int64_t n, DType dtype = DType::Float32);                  // 0..n-1

  // --- metadata
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  size_t dim() const { return impl().shape.size(); }
  int64_t size(int64_t axis) const;
  int64_t numel() const { return impl().shape.numel(); }
  DType dtype() const { return impl().dtype; }
  std::string str() const;  // "Tensor([2, 3], float32)" plus values when small

  // --- data access (contiguous buffer of numel() elements)
  template <class T> T* data();
  template <class T> const T* data() const;
  double item() const;                    // the single element of a one-element tensor
  double at(int64_t flat_index) const;    // one element, converted to double
  std::vector<double> to_vector() const;  // all elements, converted to double
  Tensor to(DType dtype) const;           // converted copy, differentiable between float types (a copy when the dtype is already this)
  Tensor clone() const;                   // differentiable copy with its own storage
  Tensor contiguous_copy() const;         // plain copy, no graph

  // --- autograd
  bool requires_grad() const { return impl().requires_grad; }
  Tensor& set_requires_grad(bool on = true);
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  Tensor grad() const;                    // undefined until a backward reaches this leaf
  void set_grad(const Tensor& g);
  void zero_grad();                       // drops .grad (PyTorch's set_to_none)
  const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
  Tensor detach() const;                  // same storage, no graph
  // Backpropagates from this tensor. Without `grad`, the tensor must hold one element.
  // With create_graph, a leaf's .grad keeps a graph that refers back to the
  // leaf (a reference cycle, as in PyTorch): call zero_grad() when done with it.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false,
                bool create_graph = false) const;
  Tensor& set_name(const std::string& n);
  const std::string& name() const { return impl().name; }

  // --- in-place (bump the version counter; refused on leaves that require grad
  //     while grad mode is on, as in PyTorch)
  Tensor& fill_(double v);
  Tensor& zero_() { return fill_(0.0); }
  Tensor& copy_(const Tensor& src);   // same shape and dtype
  Tensor& add_(const Tensor& other, double alpha = 1.0);  // this += alpha * other, same shape
  Tensor& mul_(double s);
  void bump_version(const char* op);  // for code that writes data<T>() directly

  // --- handy methods (the free functions in ops.h do the work)
  Tensor reshape(const Shape& s) const;
  Tensor sum() const;
  Tensor mean() const;

  TensorImpl& impl() const;
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// ----------------------------------------------------------------- live counters
// What the engine currently holds, so tests can prove buffers are freed.
struct LiveCounts {
  int64_t tensors;  // TensorImpl objects
  int64_t nodes;    // graph nodes
  int64_t bytes;    // bytes of tensor storage
};
LiveCounts live_counts();
// Freed tensor buffers are cached for reuse (up to 1 GiB); these release and report them.
void empty_cache();
int64_t cached_bytes();
// True in a sanitizer build (make test SANITIZE=1): every tensor buffer is then its exact size
// and freed at once, never rounded up or cached, so AddressSanitizer sees a read one element
// past a tensor's end and a use after free (a cached block would hide both).
bool checked_memory();

}  // namespace dgm
