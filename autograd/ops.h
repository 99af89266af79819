// dgm/autograd/ops.h — every differentiable op the engine offers.
//
// Each op lives in autograd/ops/<family>.cpp with its forward and its
// backward rule side by side and the derivative written in a comment.
// Binary ops broadcast like NumPy; their backward reduces the gradient to
// each input's shape in one place, sum_to().
#pragma once

#include <vector>

#include "autograd/tensor.h"

namespace dgm {

using Axes = std::vector<int64_t>;  // empty = all axes (for reductions)

// ---------------------------------------------------------------- elementwise.cpp
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);   // a^b, a > 0 where b is not an integer; at a = 0 the
                                                // gradients take their limits (0), not NaN
Tensor pow(const Tensor& a, double exponent);   // a^p
Tensor maximum(const Tensor& a, const Tensor& b);  // a tie splits the gradient evenly, as max()
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor neg(const Tensor& a);
// Comparisons return 0/1 in the inputs' dtype and carry no gradient.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
// where(cond, a, b): a where cond != 0, else b. No gradient flows to cond.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
// Reduces a broadcast gradient back to `shape` by summing the broadcast axes.
Tensor sum_to(const Tensor& g, const Shape& shape);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, double s);
Tensor operator-(const Tensor& a, double s);
Tensor operator*(const Tensor& a, double s);
Tensor operator/(const Tensor& a, double s);
Tensor operator+(double s, const Tensor& a);
Tensor operator-(double s, const Tensor& a);
Tensor operator*(double s, const Tensor& a);
Tensor operator/(double s, const Tensor& a);

// ---------------------------------------------------------------- unary.cpp
// One line each in autograd/ops/unary_table.h (math, kernel and derivative):
//   exp, log, log1p, sqrt, abs, square, sin, cos, tanh, sigmoid, relu,
//   softplus (log(1 + e^x), stable), log_sigmoid (-softplus(-x), stable)
#define DGM_UNARY(name, ...) Tensor name(const Tensor& x);
#include "autograd/ops/unary_table.h"
#undef DGM_UNARY
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
Tensor clamp(const Tensor& x, double lo, double hi);
Tensor sign(const Tensor& x);          // -1, 0, 1; no gradient

// ---------------------------------------------------------------- reduce.cpp
Tensor sum(const Tensor& x, const Axes& axes = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const Axes& axes = {}, bool keepdim = false);
Tensor max(const Tensor& x, const Axes& axes = {}, bool keepdim = false);  // ties share the gradient
Tensor min(const Tensor& x, const Axes& axes = {}, bool keepdim = false);
Tensor logsumexp(const Tensor& x, const Axes& axes = {}, bool keepdim = false);
Tensor var(const Tensor& x, const Axes& axes = {}, bool keepdim = false, bool unbiased = true);
Tensor argmax(const Tensor& x, int64_t axis);  // int64 indices, no gradient

// ---------------------------------------------------------------- matmul.cpp
// Matrix product with NumPy semantics: 2-D @ 2-D, batched N-D @ N-D (batch
// axes broadcast), N-D @ 2-D, and 1-D operands (as a row / column vector).
Tensor matmul(const Tensor& a, const Tensor& b);
// 2-D product op(a) @ op(b) with op = transpose where the flag is set. The
// transposes are passed to BLAS, not copied.
Tensor mm(const Tensor& a, const Tensor& b, bool transpose_a = false, bool transpose_b = false);
// x @ w^T + b, with w of shape [out, in] (PyTorch's nn.Linear convention).
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = Tensor());
// relu(linear(x, w, b)) as one op (one node, "linear_relu"): the bias and the relu are applied
// while the product's sums are in registers where the packed product runs (nn::Sequential uses it
// for a Linear followed by a ReLU).
Tensor linear_relu(const Tensor& x, const Tensor& w, const Tensor& b = Tensor());

// ---------------------------------------------------------------- shape.cpp
Tensor reshape(const Tensor& x, const Shape& shape);  // one axis may be -1; shares storage
Tensor flatten(const Tensor& x, int64_t start_axis = 0);
Tensor permute(const Tensor& x, const Axes& order);
Tensor transpose(const Tensor& x, int64_t axis0, int64_t axis1);
// Elements start, start+step, ... (< end) along `axis`; negative start/end count from the end.
Tensor slice(const Tensor& x, int64_t axis, int64_t start, int64_t end, int64_t step = 1);
// x[..., index, ...] along `axis`, that axis removed (negative index counts from the end).
Tensor select(const Tensor& x, int64_t axis, int64_t index);
Tensor index_select(const Tensor& x, int64_t axis, const Tensor& index);  // index: int64, 1-D
Tensor gather(const Tensor& x, int64_t axis, const Tensor& index);        // index: int64, x's rank
Tensor concat(const std::vector<Tensor>& xs, int64_t axis);
Tensor stack(const std::vector<Tensor>& xs, int64_t axis);
Tensor expand(const Tensor& x, const Shape& shape);  // broadcast_to
Tensor squeeze(const Tensor& x, int64_t axis);
Tensor unsqueeze(const Tensor& x, int64_t axis);
// The adjoints of slice / index_select / gather (also differentiable): place
// `g` into a zero tensor of `shape`.
Tensor slice_backward(const Tensor& g, const Shape& shape, int64_t axis, int64_t start,
                      int64_t step);
Tensor index_add_into_zeros(const Tensor& g, const Shape& shape, int64_t axis,
                            const Tensor& index);
Tensor scatter_add_into_zeros(const Tensor& g, const Shape& shape, int64_t axis,
                              const Tensor& index);

// ---------------------------------------------------------------- conv.cpp (NCHW)
// y = conv(x, w) + b with w: [O, C, kH, kW] (cross-correlation, as PyTorch), via im2col + GEMM.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b = Tensor(), int64_t stride = 1,
              int64_t padding = 0, int64_t dilation = 1);
// conv2d(x, w * kernel_mask, b) for a 0/1 mask [kH, kW] shared by every
// channel pair, with the masked-out kernel positions never computed (a
// causal or other sparse kernel runs in a fraction of the FLOPs). The
// gradient w.r.t. w is zero at the masked positions.
Tensor masked_conv2d(const Tensor& x, const Tensor& w, const Tensor& kernel_mask, const Tensor& b = Tensor(),
                     int64_t stride = 1, int64_t padding = 0, int64_t dilation = 1);
// The transpose (adjoint) of conv2d, w: [Cin, Cout, kH, kW] as in PyTorch.
// Output size: (H - 1) stride - 2 padding + dilation (kH - 1) + output_padding + 1.
Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b = Tensor(), int64_t stride = 1,
                        int64_t padding = 0, int64_t output_padding = 0, int64_t dilation = 1);
// Mean over k x k windows, `stride` apart (0: stride = k), no padding.
Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride = 0);
Tensor avg_pool2d_adjoint(const Tensor& g, const Shape& input_shape, int64_t kernel, int64_t stride);
Tensor upsample_nearest2d(const Tensor& x, int64_t scale);

// ---------------------------------------------------------------- norm.cpp
// Normalises over the last `normalized_axes` axes: (x - mean) / sqrt(var + eps) * weight + bias
// (biased variance, as PyTorch); weight and bias (optional) have the shape of those axes.
Tensor layer_norm(const Tensor& x, int64_t normalized_axes, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);
// x: [N, C, ...] normalised within each of `groups` groups of C / groups channels;
// weight and bias (optional) are per channel [C].
Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);
class Generator;
// Training: zeroes each element with probability p and scales the rest by 1/(1-p).
// Not training: returns x unchanged.
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen);

// ---------------------------------------------------------------- recurrent.cpp
// An LSTM layer over a whole sequence: input_proj [N, L, 4H] (x_t W_ih^T + b for every step, PyTorch's
// gate order i, f, g, o), the initial state h0, c0 [N, H] and W_hh [4H, H] -> h_1 .. h_L [N, L, H].
// One op: forward and backward through time in raw loops, dW_hh by GEMMs over all steps at once.
// `last_cell_detached` (optional) receives c_L [N, H] as a constant: no gradient flows back through it
// (truncated backpropagation through time carries the state into the next chunk this way).
Tensor lstm_sequence(const Tensor& input_proj, const Tensor& h0, const Tensor& c0, const Tensor& w_hh,
                     Tensor* last_cell_detached = nullptr);

// ---------------------------------------------------------------- attention.cpp
// Causal multi-head self-attention: qkv [N, T, 3C] as one linear layer writes it (queries, keys,
// values, each C = heads x d wide, head h in columns h d ..) -> [N, T, C], per head
// out_t = sum_{j <= t} softmax_j(q_t . k_j / sqrt d) v_j. One op: five GEMMs per (example, head)
// reading q, k, v in place. `weights` (optional) receives the attention matrices [N, heads, T, T].
Tensor causal_self_attention(const Tensor& qkv, int64_t heads, Tensor* weights = nullptr);
// The additive causal mask [lq, lk] for the last lq of lk positions: 0 where query i (position
// lk - lq + i) may see key j, -inf where j comes later (e^{-inf} = 0 exactly after the softmax).
Tensor causal_mask(int64_t lq, int64_t lk, DType dtype);

// ---------------------------------------------------------------- loss.cpp
Tensor softmax(const Tensor& x, int64_t axis = -1);
Tensor log_softmax(const Tensor& x, int64_t axis = -1);
enum class Reduction { None, Sum, Mean };
// -[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))], computed stably from logits x.
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target,
                                        Reduction reduction = Reduction::Mean);
// -log softmax(logits)[target] over classes (axis 1); targets are int64 class indices.
Tensor cross_entropy(const Tensor& logits, const Tensor& target,
                     Reduction reduction = Reduction::Mean);
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);

}  // namespace dgm
