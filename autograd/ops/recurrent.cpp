// dgm/autograd/ops/recurrent.cpp — an LSTM layer over a whole sequence, one op (forward and
// backward through time side by side).
//
// From the input projections a_t = x_t W_ih^T + b (computed by the caller for every step at once,
// one linear) and the previous state, per step t (PyTorch's gate order i, f, g, o):
//   [i, f, g, o] = a_t + h_{t-1} W_hh^T          then i, f, o through sigmoid, g through tanh
//   c_t = f c_{t-1} + i g,     h_t = o tanh(c_t)
// Backward through time, from t = L - 1 down, with dh = dL/dh_t (from the output and from step t + 1)
// and dc = dL/dc_t (from step t + 1):
//   dc   += dh o (1 - tanh^2 c_t)
//   the pre-activations' gradients  da_i = dc g i (1 - i),  da_f = dc c_{t-1} f (1 - f),
//                                    da_g = dc i (1 - g^2),  da_o = dh tanh(c_t) o (1 - o)
//   dh_{t-1} = da_t W_hh (+ the output's),   dc_{t-1} = dc f,   dW_hh = sum_t da_t^T h_{t-1}
// Without a graph this is raw loops, one GEMM a step each way (W_hh packed once for all steps:
// autograd/packed_gemm.cpp), and dW_hh as GEMMs over every step at the end (not one per step, as
// the composition of engine ops does). Under create_graph the same formulas run in engine ops
// (differentiable again). tests/test_sequence.cpp checks it against the
// LSTM cell step by step, and gradchecks and gradgradchecks it.
#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/graph.h"
#include "autograd/kernels.h"
#include "autograd/ops.h"

namespace dgm {

namespace {

struct Dims {
  int64_t n, l, h;
  int64_t g() const { return 4 * h; }
};

// Every buffer is laid out as the op's input and output, [N, L, ...]: row (n, t) at n L + t. A step's
// N rows are then L rows apart, which its GEMMs take as their leading dimension (no transposed copies).
//   act [N, L, 4H]  the input projections on entry, the activated gates (i, f, g, o) on return
//   hs, cs, tcs [N, L, H]  h_t, c_t and tanh(c_t)
template <class T>
void forward_step(const T* __restrict gates, const T* __restrict cprev, int64_t H, T* __restrict c, T* __restrict tc, T* __restrict h,
                  DType dtype) {
  for (int64_t u = 0; u < H; ++u) c[u] = gates[H + u] * cprev[u] + gates[u] * gates[2 * H + u];
  kernels::tanh_raw(c, tc, H, dtype);
  for (int64_t u = 0; u < H; ++u) h[u] = gates[3 * H + u] * tc[u];
}

template <class T>
void forward_loops(const Dims& d, T* act, const T* h0, const T* c0, const T* w, T* hs, T* cs, T* tcs, DType dtype) {
  const int64_t H = d.h, G = d.g(), N = d.n, L = d.l;
  const kernels::PackedB w_t = kernels::pack_b(true, H, G, w, H, dtype);  // W_hh^T, copied once for the L steps
  for (int64_t t = 0; t < L; ++t) {
    // += h_{t-1} W_hh^T for the N rows of step t
    kernels::gemm_packed(N, t == 0 ? h0 : hs + (t - 1) * H, t == 0 ? H : L * H, w_t, true, act + t * G, L * G);
    kernels::lstm_activate(act + t * G, N, H, L * G, dtype);
    for (int64_t n = 0; n < N; ++n) {
      const int64_t row = n * L + t;
      forward_step<T>(act + row * G, t == 0 ? c0 + n * H : cs + (row - 1) * H, H, cs + row * H, tcs + row * H, hs + row * H, dtype);
    }
  }
}

// One example's step of the backward through time (the formulas at the top), over its H units:
// the gates' gradients da [4H] from the activated gates a [4H], and dc updated in place to dc_{t-1}.
template <class T>
void backward_step(const T* __restrict a, const T* __restrict tc, const T* __restrict cprev, const T* __restrict gout,
                   const T* __restrict dh, int64_t H, T* __restrict da, T* __restrict dc) {
  for (int64_t u = 0; u < H; ++u) {
    const T i = a[u], f = a[H + u], gg = a[2 * H + u], o = a[3 * H + u];
    const T dht = gout[u] + dh[u];
    const T dct = dc[u] + dht * o * (T(1) - tc[u] * tc[u]);
    da[u] = dct * gg * i * (T(1) - i);
    da[H + u] = dct * cprev[u] * f * (T(1) - f);
    da[2 * H + u] = dct * i * (T(1) - gg * gg);
    da[3 * H + u] = dht * tc[u] * o * (T(1) - o);
    dc[u] = dct * f;
  }
}

struct LSTMSequenceBackward : Node {
  SavedTensor input_proj, h0, c0, w;
  SavedTensor hs;         // the output h_t (saved as an output: a later in-place change is an error, not a wrong gradient)
  Tensor act, cs, tcs;    // the forward's own buffers (no graph): gates, c, tanh c
  Dims d{};
  const char* name() const override { return "lstm_sequence"; }

  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor h0v = h0.unpack(*this), c0v = c0.unpack(*this), wv = w.unpack(*this);
    if (GradMode::is_enabled()) return composite(g, input_proj.unpack(*this), h0v, c0v, wv);
    const int64_t H = d.h, G = d.g(), L = d.l, N = d.n;
    const DType dt = wv.dtype();
    const Tensor hsv = hs.unpack(*this);
    Tensor ga = Tensor::empty({N, L, G}, dt), dh = Tensor::zeros({N, H}, dt), dc = Tensor::zeros({N, H}, dt), dw = Tensor::empty({G, H}, dt);
    kernels::dispatch_float(dt, "lstm_sequence backward", [&](auto tag) {
      using T = decltype(tag);
      const T *pa = act.data<T>(), *pc = cs.data<T>(), *ptc = tcs.data<T>(), *pg = g.data<T>(), *pc0 = c0v.data<T>();
      const T *pw = wv.data<T>(), *ph = hsv.data<T>(), *ph0 = h0v.data<T>();
      T *pga = ga.data<T>(), *pdh = dh.data<T>(), *pdc = dc.data<T>();
      const kernels::PackedB w_packed = kernels::pack_b(false, G, H, pw, H, dt);  // W_hh, copied once for the L steps
      for (int64_t t = L - 1; t >= 0; --t) {
        for (int64_t n = 0; n < N; ++n) {
          const int64_t row = n * L + t;
          backward_step<T>(pa + row * G, ptc + row * H, t == 0 ? pc0 + n * H : pc + (row - 1) * H, pg + row * H, pdh + n * H, H,
                           pga + row * G, pdc + n * H);
        }
        kernels::gemm_packed(N, pga + t * G, L * G, w_packed, false, pdh, H);  // dh_{t-1} = da_t W_hh
      }
      // dW_hh = sum over n and t of da_{n,t}^T h_{n,t-1}. As rows of [N L, .], da's row r + 1 meets h's row
      // r: one GEMM over all N L - 1 pairs gets every t >= 1 right, and pairs each da_{n,0} (n >= 1) with
      // h_{n-1,L-1}, which a second GEMM (N - 1 rows, L rows apart) takes back out; a third adds da_{n,0}^T h0_n.
      T* pdw = dw.data<T>();
      const int64_t R = N * L;
      if (R > 1) kernels::gemm(true, false, G, H, R - 1, 1.0, pga + G, G, ph, H, 0.0, pdw, H, dt);
      else std::fill(pdw, pdw + G * H, T(0));
      if (N > 1) kernels::gemm(true, false, G, H, N - 1, -1.0, pga + L * G, L * G, ph + (L - 1) * H, L * H, 1.0, pdw, H, dt);
      kernels::gemm(true, false, G, H, N, 1.0, pga, L * G, ph0, H, 1.0, pdw, H, dt);
    });
    return {next[0] ? ga : Tensor(), next[1] ? dh : Tensor(), next[2] ? dc : Tensor(), next[3] ? dw : Tensor()};
  }

  // The same backward through time in engine ops, the forward recomputed from the inputs.
  std::vector<Tensor> composite(const Tensor& g, const Tensor& xp, const Tensor& h0v, const Tensor& c0v, const Tensor& wv) const {
    const int64_t H = d.h, L = d.l;
    std::vector<Tensor> i(L), f(L), gg(L), o(L), c(L), hprev(L);
    Tensor h = h0v, cell = c0v;
    for (int64_t t = 0; t < L; ++t) {
      const Tensor a = select(xp, 1, t) + linear(h, wv);
      i[t] = sigmoid(slice(a, 1, 0, H)), f[t] = sigmoid(slice(a, 1, H, 2 * H));
      gg[t] = tanh(slice(a, 1, 2 * H, 3 * H)), o[t] = sigmoid(slice(a, 1, 3 * H, 4 * H));
      hprev[t] = h;
      cell = f[t] * cell + i[t] * gg[t];
      c[t] = cell;
      h = o[t] * tanh(cell);
    }
    Tensor dh = zeros_like(h0v), dc = zeros_like(c0v), dw;
    std::vector<Tensor> da(L);
    for (int64_t t = L - 1; t >= 0; --t) {
      const Tensor dht = select(g, 1, t) + dh, tc = tanh(c[t]);
      const Tensor dct = dc + dht * o[t] * (1.0 - square(tc));
      const Tensor cp = t == 0 ? c0v : c[t - 1];
      da[t] = concat({dct * gg[t] * i[t] * (1.0 - i[t]), dct * cp * f[t] * (1.0 - f[t]), dct * i[t] * (1.0 - square(gg[t])),
                      dht * tc * o[t] * (1.0 - o[t])},
                     1);
      dh = matmul(da[t], wv);
      dc = dct * f[t];
      const Tensor dwt = mm(da[t], hprev[t], true, false);
      dw = dw.defined() ? dw + dwt : dwt;
    }
    return {next[0] ? stack(da, 1) : Tensor(), next[1] ? dh : Tensor(), next[2] ? dc : Tensor(), next[3] ? dw : Tensor()};
  }
  static Tensor zeros_like(const Tensor& t) { return Tensor::zeros(t.shape(), t.dtype()); }
  void release_saved() override {
    input_proj.reset(), h0.reset(), c0.reset(), w.reset(), hs.reset();
    act = cs = tcs = Tensor();
  }
};

}  // namespace

Tensor lstm_sequence(const Tensor& input_proj, const Tensor& h0, const Tensor& c0, const Tensor& w_hh, Tensor* last_cell_detached) {
  if (input_proj.dim() != 3 || w_hh.dim() != 2 || w_hh.size(0) != 4 * w_hh.size(1) || input_proj.size(2) != w_hh.size(0) ||
      h0.shape() != Shape{input_proj.size(0), w_hh.size(1)} || c0.shape() != h0.shape())
    throw Error("lstm_sequence: needs input projections [N, L, 4H], h0 and c0 [N, H] and W_hh [4H, H]; got " + input_proj.shape().str() +
                ", h0 " + h0.shape().str() + ", c0 " + c0.shape().str() + ", W_hh " + w_hh.shape().str());
  for (const Tensor* t : {&h0, &c0, &w_hh}) kernels::check_same_float(input_proj, *t, "lstm_sequence");
  const Dims d{input_proj.size(0), input_proj.size(1), w_hh.size(1)};
  const int64_t N = d.n, L = d.l, H = d.h;
  const DType dt = input_proj.dtype();
  Tensor act = input_proj.contiguous_copy(), hs = Tensor::empty({N, L, H}, dt), cs = Tensor::empty({N, L, H}, dt),
         tcs = Tensor::empty({N, L, H}, dt);
  kernels::dispatch_float(dt, "lstm_sequence", [&](auto tag) {
    using T = decltype(tag);
    forward_loops<T>(d, act.data<T>(), h0.data<T>(), c0.data<T>(), w_hh.data<T>(), hs.data<T>(), cs.data<T>(), tcs.data<T>(), dt);
  });
  if (last_cell_detached) {  // c_L, a plain copy (no node)
    NoGradGuard ng;
    *last_cell_detached = select(cs, 1, L - 1).contiguous_copy();
  }
  if (!any_requires_grad({&input_proj, &h0, &c0, &w_hh})) return hs;
  auto node = std::make_shared<LSTMSequenceBackward>();
  node->input_proj = SavedTensor::input(input_proj), node->h0 = SavedTensor::input(h0), node->c0 = SavedTensor::input(c0);
  node->w = SavedTensor::input(w_hh);
  node->act = act, node->cs = cs, node->tcs = tcs, node->d = d;
  attach(hs, node, {&input_proj, &h0, &c0, &w_hh});
  node->hs = SavedTensor::output(hs);
  return hs;
}

}  // namespace dgm
