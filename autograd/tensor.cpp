// dgm/autograd/tensor.cpp — Shape, Storage and the Tensor handle.
#include "autograd/tensor.h"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>
#include <type_traits>
#include <unordered_map>

#include "autograd/graph.h"
#include "autograd/ops.h"

namespace dgm {

namespace {
std::atomic<int64_t> g_live_tensors{0};
std::atomic<int64_t> g_live_nodes{0};
std::atomic<int64_t> g_live_bytes{0};
}  // namespace

LiveCounts live_counts() { return {g_live_tensors.load(), g_live_nodes.load(), g_live_bytes.load()}; }

// Node's counter lives here so that all counters sit together.
Node::Node() { ++g_live_nodes; }

// Dropping the last handle to a long chain of nodes would destroy it
// recursively, one stack frame per node, and overflow the stack for deep
// graphs. Instead, a dying node takes over the edges of every successor that
// it holds the last reference to, and releases them in a loop.
Node::~Node() {
  --g_live_nodes;
  std::vector<std::shared_ptr<Node>> pending = std::move(next);
  while (!pending.empty()) {
    std::shared_ptr<Node> n = std::move(pending.back());
    pending.pop_back();
    if (n && n.use_count() == 1) {
      for (auto& e : n->next) pending.push_back(std::move(e));
      n->next.clear();
    }
  }
}

const char* dtype_name(DType d) {
  switch (d) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::Int64: return "int64";
  }
  return "?";
}

size_t dtype_size(DType d) { return d == DType::Float32 ? 4 : 8; }

// ----------------------------------------------------------------- Shape
Shape::Shape(std::initializer_list<int64_t> dims) {
  for (int64_t v : dims) push_back(v);
}
Shape::Shape(const std::vector<int64_t>& dims) {
  for (int64_t v : dims) push_back(v);
}
void Shape::push_back(int64_t v) {
  if (n_ == kMaxDims) throw Error("Shape: at most 8 dimensions are supported");
  d_[n_++] = v;
}
void Shape::insert(size_t pos, int64_t v) {
  if (n_ == kMaxDims) throw Error("Shape: at most 8 dimensions are supported");
  for (size_t i = n_; i > pos; --i) d_[i] = d_[i - 1];
  d_[pos] = v;
  ++n_;
}
void Shape::erase(size_t pos) {
  for (size_t i = pos; i + 1 < n_; ++i) d_[i] = d_[i + 1];
  --n_;
}
int64_t Shape::numel() const {
  int64_t n = 1;
  for (size_t i = 0; i < n_; ++i) n *= d_[i];
  return n;
}
std::string Shape::str() const {
  std::string s = "[";
  for (size_t i = 0; i < n_; ++i) {
    if (i) s += ", ";
    s += std::to_string(d_[i]);
  }
  return s + "]";
}
bool Shape::operator==(const Shape& o) const {
  if (n_ != o.n_) return false;
  for (size_t i = 0; i < n_; ++i)
    if (d_[i] != o.d_[i]) return false;
  return true;
}

std::vector<int64_t> contiguous_strides(const Shape& s) {
  std::vector<int64_t> st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  if (a == b) return a;
  size_t n = std::max(a.size(), b.size());
  Shape out;
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i + a.size() >= n ? a[i + a.size() - n] : 1;
    int64_t db = i + b.size() >= n ? b[i + b.size() - n] : 1;
    if (da != db && da != 1 && db != 1)
      throw Error(std::string(op) + ": cannot broadcast " + a.str() + " with " + b.str());
    out.push_back(da == 1 ? db : da);
  }
  return out;
}

size_t normalize_axis(int64_t axis, size_t ndim, const char* op) {
  int64_t n = static_cast<int64_t>(ndim);
  if (axis < -n || axis >= n)
    throw Error(std::string(op) + ": axis " + std::to_string(axis) + " is out of range for a " +
                std::to_string(ndim) + "-d tensor");
  return static_cast<size_t>(axis < 0 ? axis + n : axis);
}

// ----------------------------------------------------------------- Storage
// A caching allocator: freed buffers are kept by size and handed out again,
// so a training loop, which allocates the same shapes every step, stops
// calling malloc (and stops page-faulting on large fresh buffers) after its
// first step. At most kMaxCachedBytes are kept; empty_cache() returns them.
namespace {
class BlockCache {
 public:
  static constexpr size_t kMaxCachedBytes = size_t(1) << 30;
  void* get(size_t rounded) {
    {
      std::lock_guard<std::mutex> lock(m_);
      auto it = free_.find(rounded);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= rounded;
        return p;
      }
    }
    void* p = std::aligned_alloc(64, rounded);
    if (!p) {
      empty();  // give back what is cached and try once more
      p = std::aligned_alloc(64, rounded);
      if (!p) throw std::bad_alloc();
    }
    return p;
  }
  void put(void* p, size_t rounded) {
    {
      std::lock_guard<std::mutex> lock(m_);
      if (cached_ + rounded <= kMaxCachedBytes) {
        free_[rounded].push_back(p);
        cached_ += rounded;
        return;
      }
    }
    std::free(p);
  }
  void empty() {
    std::lock_guard<std::mutex> lock(m_);
    for (auto& [_, v] : free_)
      for (void* p : v) std::free(p);
    free_.clear();
    cached_ = 0;
  }
  size_t cached() {
    std::lock_guard<std::mutex> lock(m_);
    return cached_;
  }

 private:
  std::mutex m_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
};
// Never destroyed: storages may outlive every other static object.
BlockCache& block_cache() {
  static BlockCache* cache = new BlockCache();
  return *cache;
}
size_t round_block(size_t n) {
  if (n <= 64) return 64;
  if (n <= 65536) return (n + 63) / 64 * 64;
  return (n + 4095) / 4096 * 4096;  // page multiples for large buffers: fewer distinct sizes
}
}  // namespace

void empty_cache() { block_cache().empty(); }
int64_t cached_bytes() { return static_cast<int64_t>(block_cache().cached()); }

// g++ defines __SANITIZE_ADDRESS__ under -fsanitize=address; clang answers __has_feature.
#if defined(__SANITIZE_ADDRESS__)
#define DGM_CHECKED_MEMORY 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DGM_CHECKED_MEMORY 1
#endif
#endif
#ifdef DGM_CHECKED_MEMORY
bool checked_memory() { return true; }
Storage::Storage(size_t n) : nbytes(n) {
  if (posix_memalign(&data, 64, n) != 0) throw std::bad_alloc();  // exactly n bytes: no slack to hide in
  g_live_bytes += static_cast<int64_t>(nbytes);
}
Storage::~Storage() {
  std::free(data);  // at once: a later read through a stale pointer is a use after free
  g_live_bytes -= static_cast<int64_t>(nbytes);
}
#else
bool checked_memory() { return false; }
Storage::Storage(size_t n) : nbytes(n) {
  data = block_cache().get(round_block(n));
  g_live_bytes += static_cast<int64_t>(nbytes);
}
Storage::~Storage() {
  block_cache().put(data, round_block(nbytes));
  g_live_bytes -= static_cast<int64_t>(nbytes);
}
#endif

TensorImpl::TensorImpl() { ++g_live_tensors; }
TensorImpl::~TensorImpl() { --g_live_tensors; }

// ----------------------------------------------------------------- Tensor
TensorImpl& Tensor::impl() const {
  if (!impl_) throw Error("Tensor: this tensor is undefined (default-constructed, or a gradient not computed yet)");
  return *impl_;
}

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  for (int64_t d : shape)
    if (d < 0) throw Error("empty: negative dimension in shape " + shape.str());
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(shape.numel()) * dtype_size(dtype));
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memset(t.impl().storage->data, 0, t.impl().storage->nbytes);
  return t;
}

Tensor Tensor::ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }

Tensor Tensor::full(const Shape& shape, double value, DType dtype) {
  Tensor t = empty(shape, dtype);
  int64_t n = t.numel();
  switch (dtype) {
    case DType::Float32: std::fill_n(t.data<float>(), n, static_cast<float>(value)); break;
    case DType::Float64: std::fill_n(t.data<double>(), n, value); break;
    case DType::Int64: std::fill_n(t.data<int64_t>(), n, static_cast<int64_t>(value)); break;
  }
  return t;
}

Tensor Tensor::scalar(double value, DType dtype) { return full(Shape{}, value, dtype); }

Tensor Tensor::from_vector(const std::vector<float>& v, const Shape& shape) {
  if (static_cast<int64_t>(v.size()) != shape.numel())
    throw Error("from_vector: " + std::to_string(v.size()) + " values do not fill shape " + shape.str());
  Tensor t = empty(shape, DType::Float32);
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

Tensor Tensor::from_vector(const std::vector<double>& v, const Shape& shape) {
  if (static_cast<int64_t>(v.size()) != shape.numel())
    throw Error("from_vector: " + std::to_string(v.size()) + " values do not fill shape " + shape.str());
  Tensor t = empty(shape, DType::Float64);
  std::copy(v.begin(), v.end(), t.data<double>());
  return t;
}

Tensor Tensor::from_indices(const std::vector<int64_t>& v, const Shape& shape) {
  if (static_cast<int64_t>(v.size()) != shape.numel())
    throw Error("from_indices: " + std::to_string(v.size()) + " values do not fill shape " + shape.str());
  Tensor t = empty(shape, DType::Int64);
  std::copy(v.begin(), v.end(), t.data<int64_t>());
  return t;
}

Tensor Tensor::arange(int64_t n, DType dtype) {
  Tensor t = empty(Shape{n}, dtype);
  for (int64_t i = 0; i < n; ++i) {
    switch (dtype) {
      case DType::Float32: t.data<float>()[i] = static_cast<float>(i); break;
      case DType::Float64: t.data<double>()[i] = static_cast<double>(i); break;
      case DType::Int64: t.data<int64_t>()[i] = i; break;
    }
  }
  return t;
}

int64_t Tensor::size(int64_t axis) const {
  return shape()[normalize_axis(axis, dim(), "size")];
}

template <class T>
static void check_dtype(const Tensor& t) {
  DType want = std::is_same_v<T, float> ? DType::Float32
               : std::is_same_v<T, double> ? DType::Float64
                                           : DType::Int64;
  if (t.dtype() != want)
    throw Error(std::string("data: tensor holds ") + dtype_name(t.dtype()) + ", asked for " +
                dtype_name(want));
}

template <class T>
T* Tensor::data() {
  check_dtype<T>(*this);
  return static_cast<T*>(impl().storage->data);
}
template <class T>
const T* Tensor::data() const {
  check_dtype<T>(*this);
  return static_cast<const T*>(impl().storage->data);
}
template float* Tensor::data<float>();
template double* Tensor::data<double>();
template int64_t* Tensor::data<int64_t>();
template const float* Tensor::data<float>() const;
template const double* Tensor::data<double>() const;
template const int64_t* Tensor::data<int64_t>() const;

double Tensor::at(int64_t i) const {
  if (i < 0 || i >= numel())
    throw Error("at: index " + std::to_string(i) + " out of range for " + shape().str());
  const void* p = impl().storage->data;
  switch (dtype()) {
    case DType::Float32: return static_cast<const float*>(p)[i];
    case DType::Float64: return static_cast<const double*>(p)[i];
    case DType::Int64: return static_cast<double>(static_cast<const int64_t*>(p)[i]);
  }
  return 0;
}

double Tensor::item() const {
  if (numel() != 1)
    throw Error("item: tensor of shape " + shape().str() + " has " + std::to_string(numel()) +
                " elements, not one");
  return at(0);
}

std::vector<double> Tensor::to_vector() const {
  std::vector<double> v(static_cast<size_t>(numel()));
  for (int64_t i = 0; i < numel(); ++i) v[i] = at(i);
  return v;
}

Tensor Tensor::contiguous_copy() const {
  Tensor t = empty(shape(), dtype());
  std::memcpy(t.impl().storage->data, impl().storage->data, impl().storage->nbytes);
  return t;
}

Tensor Tensor::to(DType d) const {
  Tensor t;
  if (d == dtype()) {
    t = contiguous_copy();
  } else {
    t = empty(shape(), d);
    // one typed loop per pair of dtypes (through double, as at() reads: int64 -> float32 rounds once)
    auto convert = [n = numel()](const auto* from, auto* to) {
      using To = std::remove_pointer_t<decltype(to)>;
      for (int64_t i = 0; i < n; ++i) to[i] = static_cast<To>(static_cast<double>(from[i]));
    };
    auto into = [&](const auto* from) {
      switch (d) {
        case DType::Float32: convert(from, t.data<float>()); break;
        case DType::Float64: convert(from, t.data<double>()); break;
        case DType::Int64: convert(from, t.data<int64_t>()); break;
      }
    };
    switch (dtype()) {
      case DType::Float32: into(data<float>()); break;
      case DType::Float64: into(data<double>()); break;
      case DType::Int64: into(data<int64_t>()); break;
    }
  }
  // float32 <-> float64 (and a float copy in its own dtype) stays differentiable: the gradient converts back.
  if (is_floating(d) && is_floating(dtype()) && any_requires_grad({this})) {
    struct ToBackward : Node {
      DType from;
      const char* name() const override { return "to"; }
      std::vector<Tensor> backward(const Tensor& g) override { return {g.to(from)}; }
    };
    auto node = std::make_shared<ToBackward>();
    node->from = dtype();
    attach(t, node, {this});
  }
  return t;
}

Tensor Tensor::clone() const {
  // y = x; dy/dx = 1.
  Tensor t = contiguous_copy();
  if (any_requires_grad({this})) {
    struct CloneBackward : Node {
      const char* name() const override { return "clone"; }
      std::vector<Tensor> backward(const Tensor& g) override { return {g}; }
    };
    attach(t, std::make_shared<CloneBackward>(), {this});
  }
  return t;
}

std::string Tensor::str() const {
  if (!defined()) return "Tensor(undefined)";
  std::ostringstream os;
  os << "Tensor(" << shape().str() << ", " << dtype_name(dtype());
  if (requires_grad()) os << ", requires_grad";
  if (grad_fn()) os << ", grad_fn=" << grad_fn()->name();
  os << ")";
  if (numel() <= 16) {
    os << " {";
    for (int64_t i = 0; i < numel(); ++i) os << (i ? ", " : "") << at(i);
    os << "}";
  }
  return os.str();
}

Tensor& Tensor::set_requires_grad(bool on) {
  if (on && !is_floating(dtype()))
    throw Error("set_requires_grad: only floating-point tensors can require gradients (this is int64)");
  if (!is_leaf())
    throw Error("set_requires_grad: only leaves can change requires_grad; use detach() on a result of " +
                std::string(grad_fn()->name()));
  impl().requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }

void Tensor::set_grad(const Tensor& g) {
  if (g.defined() && (g.shape() != shape() || g.dtype() != dtype()))
    throw Error("set_grad: gradient " + g.shape().str() + " " + dtype_name(g.dtype()) +
                " does not match tensor " + shape().str() + " " + dtype_name(dtype()));
  impl().grad = g.impl_ptr();
}

void Tensor::zero_grad() { impl().grad.reset(); }

Tensor Tensor::detach() const {
  auto d = std::make_shared<TensorImpl>();
  d->shape = shape();
  d->dtype = dtype();
  d->storage = impl().storage;
  return Tensor(std::move(d));
}

void Tensor::backward(const Tensor& g, bool retain_graph, bool create_graph) const {
  dgm::backward({*this}, {g}, retain_graph, create_graph);
}

Tensor& Tensor::set_name(const std::string& n) {
  impl().name = n;
  return *this;
}

// ----------------------------------------------------------------- in-place
static void check_inplace(const Tensor& t, const char* op) {
  if (t.is_leaf() && t.requires_grad() && GradMode::is_enabled())
    throw Error(std::string(op) +
                ": a leaf that requires grad cannot be modified in place while grad mode is on "
                "(wrap the update in NoGradGuard, as optimizers do)");
}

void Tensor::bump_version(const char* op) {
  ++impl().storage->version;
  impl().storage->last_inplace_op = op;
}

Tensor& Tensor::fill_(double v) {
  check_inplace(*this, "fill_");
  int64_t n = numel();
  switch (dtype()) {
    case DType::Float32: std::fill_n(data<float>(), n, static_cast<float>(v)); break;
    case DType::Float64: std::fill_n(data<double>(), n, v); break;
    case DType::Int64: std::fill_n(data<int64_t>(), n, static_cast<int64_t>(v)); break;
  }
  bump_version("fill_");
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_inplace(*this, "copy_");
  if (src.shape() != shape() || src.dtype() != dtype())
    throw Error("copy_: source " + src.shape().str() + " " + dtype_name(src.dtype()) +
                " does not match destination " + shape().str() + " " + dtype_name(dtype()));
  std::memmove(impl().storage->data, src.impl().storage->data, impl().storage->nbytes);
  bump_version("copy_");
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  check_inplace(*this, "add_");
  if (other.shape() != shape() || other.dtype() != dtype())
    throw Error("add_: " + other.shape().str() + " " + dtype_name(other.dtype()) +
                " cannot be added in place into " + shape().str() + " " + dtype_name(dtype()));
  int64_t n = numel();
  if (dtype() == DType::Float32) {
    float* d = data<float>();
    const float* s = other.data<float>();
    float a = static_cast<float>(alpha);
    for (int64_t i = 0; i < n; ++i) d[i] += a * s[i];
  } else if (dtype() == DType::Float64) {
    double* d = data<double>();
    const double* s = other.data<double>();
    for (int64_t i = 0; i < n; ++i) d[i] += alpha * s[i];
  } else {
    throw Error("add_: int64 tensors are not supported");
  }
  bump_version("add_");
  return *this;
}

Tensor& Tensor::mul_(double s) {
  check_inplace(*this, "mul_");
  int64_t n = numel();
  if (dtype() == DType::Float32) {
    float* d = data<float>();
    float f = static_cast<float>(s);
    for (int64_t i = 0; i < n; ++i) d[i] *= f;
  } else if (dtype() == DType::Float64) {
    double* d = data<double>();
    for (int64_t i = 0; i < n; ++i) d[i] *= s;
  } else {
    throw Error("mul_: int64 tensors are not supported");
  }
  bump_version("mul_");
  return *this;
}

Tensor Tensor::reshape(const Shape& s) const { return dgm::reshape(*this, s); }
Tensor Tensor::sum() const { return dgm::sum(*this); }
Tensor Tensor::mean() const { return dgm::mean(*this); }

}  // namespace dgm
