// dgm/models/pixelrnn.h — PixelRNN (van den Oord, Kalchbrenner, Kavukcuoglu 2016): LSTMs over
// the rows or the diagonals of an image (docs/chapters/sequence.md, eqs. 9-11).
//
//   a 7x7 type-A masked convolution (as PixelCNN's first layer: pixel (r, c) sees only pixels
//   before it in raster order), then `layers` residual LSTM layers, then ReLU, 1x1, ReLU, 1x1
//   to each pixel's logits.
//
// Row LSTM: the rows are the time steps. Input-to-state: a masked 1x3 convolution along the
// row (left and centre); state-to-state: a 1x3 convolution of the previous row's h. Its
// receptive field is a triangle above the pixel: H sequential steps.
// Diagonal BiLSTM: the feature map is skewed (row r shifted right by r) so that each
// diagonal is a column; a column LSTM runs left to right with a 2x1 state-to-state
// convolution (rows r - 1 and r of the previous column) — one step a diagonal, 2N - 1 for an
// N x N image, and the whole context above and to the left. A second LSTM runs right to left;
// its output is shifted down one row, so that no pixel sees its own row's future. Because of that
// shift it may read the pixels themselves (the image beside the features): without them the last
// pixel of the row above would be out of reach of every pixel further left than the first
// layer's 7x7 kernel (the type-A features never include their own pixel) — measured by the
// engine's Jacobian in tests/test_sequence.cpp.
#pragma once

#include <memory>
#include <vector>

#include "models/pixelcnn.h"
#include "models/sequence.h"

namespace dgm::models {

// [N, C, H, W] -> [N, C, H, W + H - 1]: row r moved right by r (zeros elsewhere), and its inverse.
Tensor skew(const Tensor& x);
Tensor unskew(const Tensor& x, int64_t width);

class RowLSTMLayer : public nn::Module {
 public:
  RowLSTMLayer(int64_t channels, int64_t hidden, Generator& gen);
  Tensor forward(const Tensor& x) override;  // [N, C, H, W] -> [N, C, H, W] (x + 1x1(h))
  int64_t sequential_steps = 0;              // the recurrence's steps in the last forward (H)

 private:
  int64_t hidden_;
  Tensor input_to_state_, state_to_state_, bias_, row_mask_, full_row_;
  std::shared_ptr<nn::Conv2d> out_;
};

class DiagonalBiLSTMLayer : public nn::Module {
 public:
  DiagonalBiLSTMLayer(int64_t channels, int64_t hidden, Generator& gen);
  // x [N, C, H, W] and the image [N, 1, H, W] (read by the right-to-left LSTM) -> [N, C, H, W]
  Tensor forward(const Tensor& x, const Tensor& image);
  int64_t sequential_steps = 0;              // columns of the skewed map the recurrence walked (W + H - 1)

 private:
  // One direction over the skewed map: [N, C, H, W'] -> h [N, hidden, H, W'].
  Tensor run(const Tensor& skewed, nn::Conv2d& input_to_state, const Tensor& same_row, const Tensor& row_above);
  int64_t hidden_;
  std::shared_ptr<nn::Conv2d> is_fwd_, is_bwd_, out_;
  Tensor ss_fwd_same_, ss_fwd_above_, ss_bwd_same_, ss_bwd_above_;
};

struct PixelRNNOptions {
  std::string kind = "diagonal";  // "row" (Row LSTM) or "diagonal" (Diagonal BiLSTM)
  int64_t levels = 17, height = 8, width = 8;
  int64_t channels = 32, hidden = 32, layers = 2;
};

class PixelRNN : public SequenceModel {
 public:
  PixelRNN(const PixelRNNOptions& o, Generator& gen);
  std::string name() const override { return "pixelrnn"; }
  std::string config_json() const override;  // {"kind", "levels", "height", "width", "channels", "hidden", "layers"}
  // The network on images [N, 1, H, W] in [0, 1]: logits [N, V, H, W].
  Tensor image_logits(const Tensor& images);
  Tensor logits(const Tensor& tokens, const Tensor& y = Tensor()) override;  // [N, H W, V] in raster order (unconditional: no y)
  // Sequential steps of one forward pass, summed over the layers' recurrences.
  int64_t sequential_steps() const;
  const PixelRNNOptions& options() const { return o_; }

 private:
  PixelRNNOptions o_;
  std::shared_ptr<MaskedConv2d> input_;
  std::vector<std::shared_ptr<RowLSTMLayer>> rows_;
  std::vector<std::shared_ptr<DiagonalBiLSTMLayer>> diagonals_;
  std::shared_ptr<nn::Conv2d> hidden_out_, out_;
};

}  // namespace dgm::models
