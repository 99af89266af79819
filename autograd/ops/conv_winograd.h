// dgm/autograd/ops/conv_winograd.h — internal: 3x3 stride-1 convolutions by
// Winograd's minimal filtering algorithm F(2x2, 3x3) (Lavin & Gray, 2016).
//
// conv.cpp routes a convolution here when its kernel is a full 3x3, stride
// and dilation 1 (the couplings of the image flows, the U-Net's blocks, and
// the input gradient of any of them, itself such a convolution); everything
// else goes through im2col + GEMM. runtime::set_conv_winograd(false) turns
// the route off (the tests compare the two; bench_train times both).
#pragma once

#include <cstdint>

namespace dgm::winograd {

struct Geometry {
  int64_t n, c, h, w;  // input [n, c, h, w]
  int64_t o;           // weight [o, c, 3, 3]
  int64_t pad;         // the same on all four sides
  int64_t oh() const { return h + 2 * pad - 2; }
  int64_t ow() const { return w + 2 * pad - 2; }
};

// y[n, o] = b[o] + sum_{c,i,j} w[o, c, i, j] x[n, c, y + i - pad, x + j - pad]   (b may be null)
template <class T>
void forward(const T* x, const T* w, const T* b, T* y, const Geometry& g);

// dw[o, c, i, j] = sum_{n,y,x} gy[n, o, y, x] x[n, c, y + i - pad, x + j - pad]
template <class T>
void weight_grad(const T* x, const T* gy, T* dw, const Geometry& g);

}  // namespace dgm::winograd
