// dgm/models/pixelrnn.cpp
#include "models/pixelrnn.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "models/rnn.h"

namespace dgm::models {

namespace {

Tensor uniform_fan_in(const Shape& s, int64_t fan_in, Generator& gen) {
  const double b = 1.0 / std::sqrt(static_cast<double>(fan_in));
  return gen.uniform(s, -b, b);
}

// A 3x3 kernel mask whose middle row is `middle` (the other rows 0): a 1x3 convolution that keeps
// the image's height with padding 1.
Tensor middle_row_mask(const std::vector<float>& middle) {
  return Tensor::from_vector(std::vector<float>{0, 0, 0, middle[0], middle[1], middle[2], 0, 0, 0}, {3, 3});
}

// Rows moved down by one (row 0 zero): [N, ..., H, ...] along `axis`.
Tensor shift_down(const Tensor& x, int64_t axis) {
  Shape zs = x.shape();
  zs[static_cast<size_t>(axis)] = 1;
  return concat({Tensor::zeros(zs, x.dtype()), slice(x, axis, 0, x.size(axis) - 1)}, axis);
}

// Reverses the last axis (the image's columns).
Tensor flip_columns(const Tensor& x) {
  const int64_t W = x.size(3);
  std::vector<int64_t> rev(static_cast<size_t>(W));
  for (int64_t j = 0; j < W; ++j) rev[static_cast<size_t>(j)] = W - 1 - j;
  return index_select(x, 3, Tensor::from_indices(rev, {W}));
}

}  // namespace

Tensor skew(const Tensor& x) {
  if (x.dim() != 4) throw Error("skew: needs [N, C, H, W], got " + x.shape().str());
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2);
  std::vector<Tensor> rows;
  for (int64_t r = 0; r < H; ++r) {
    std::vector<Tensor> parts;
    if (r > 0) parts.push_back(Tensor::zeros({N, C, 1, r}, x.dtype()));
    parts.push_back(slice(x, 2, r, r + 1));
    if (r < H - 1) parts.push_back(Tensor::zeros({N, C, 1, H - 1 - r}, x.dtype()));
    rows.push_back(parts.size() == 1 ? parts[0] : concat(parts, 3));
  }
  return concat(rows, 2);
}

Tensor unskew(const Tensor& x, int64_t width) {
  const int64_t H = x.size(2);
  if (x.dim() != 4 || x.size(3) != width + H - 1)
    throw Error("unskew: needs [N, C, H, W + H - 1] for W = " + std::to_string(width) + ", got " + x.shape().str());
  std::vector<Tensor> rows;
  for (int64_t r = 0; r < H; ++r) rows.push_back(slice(slice(x, 2, r, r + 1), 3, r, r + width));
  return concat(rows, 2);
}

// ---------------------------------------------------------------- Row LSTM

RowLSTMLayer::RowLSTMLayer(int64_t channels, int64_t hidden, Generator& gen) : hidden_(hidden) {
  input_to_state_ = register_parameter("input_to_state", uniform_fan_in({4 * hidden, channels, 3, 3}, 2 * channels, gen));
  state_to_state_ = register_parameter("state_to_state", uniform_fan_in({4 * hidden, hidden, 3, 3}, 3 * hidden, gen));
  bias_ = register_parameter("bias", Tensor::zeros({4 * hidden}));
  row_mask_ = register_buffer("row_mask", middle_row_mask({1, 1, 0}));  // left and centre: causal along the row
  full_row_ = register_buffer("full_row", middle_row_mask({1, 1, 1}));  // the previous row: all of it is past
  out_ = register_module("out", std::make_shared<nn::Conv2d>(hidden, channels, 1, gen));
}

Tensor RowLSTMLayer::forward(const Tensor& x) {
  const int64_t N = x.size(0), H = x.size(2), W = x.size(3), h4 = 4 * hidden_;
  const Tensor is = masked_conv2d(x, input_to_state_, row_mask_, bias_, 1, 1);  // [N, 4h, H, W], every row at once
  Tensor h = Tensor::zeros({N, hidden_, W}, x.dtype()), c = h;
  std::vector<Tensor> rows;
  sequential_steps = 0;
  for (int64_t r = 0; r < H; ++r) {
    Tensor gates = select(is, 2, r);  // [N, 4h, W]
    if (r > 0) gates = gates + reshape(masked_conv2d(unsqueeze(h, 2), state_to_state_, full_row_, Tensor(), 1, 1), {N, h4, W});
    std::tie(h, c) = lstm_update(gates, c, 1);
    rows.push_back(h);
    ++sequential_steps;
  }
  return x + out_->forward(stack(rows, 2));
}

// ---------------------------------------------------------------- Diagonal BiLSTM

DiagonalBiLSTMLayer::DiagonalBiLSTMLayer(int64_t channels, int64_t hidden, Generator& gen) : hidden_(hidden) {
  is_fwd_ = register_module("forward_input", std::make_shared<nn::Conv2d>(channels, 4 * hidden, 1, gen));
  is_bwd_ = register_module("backward_input", std::make_shared<nn::Conv2d>(channels + 1, 4 * hidden, 1, gen));
  ss_fwd_same_ = register_parameter("forward_same_row", uniform_fan_in({4 * hidden, hidden}, 2 * hidden, gen));
  ss_fwd_above_ = register_parameter("forward_row_above", uniform_fan_in({4 * hidden, hidden}, 2 * hidden, gen));
  ss_bwd_same_ = register_parameter("backward_same_row", uniform_fan_in({4 * hidden, hidden}, 2 * hidden, gen));
  ss_bwd_above_ = register_parameter("backward_row_above", uniform_fan_in({4 * hidden, hidden}, 2 * hidden, gen));
  out_ = register_module("out", std::make_shared<nn::Conv2d>(hidden, channels, 1, gen));
}

Tensor DiagonalBiLSTMLayer::run(const Tensor& skewed, nn::Conv2d& input_to_state, const Tensor& same_row,
                                const Tensor& row_above) {
  const int64_t N = skewed.size(0), H = skewed.size(2), Wd = skewed.size(3);
  // input-to-state: a 1x1 convolution, every position at once; [N, W', H, 4h] so a column is a select
  const Tensor is = permute(input_to_state.forward(skewed), {0, 3, 2, 1});
  Tensor h = Tensor::zeros({N, H, hidden_}, skewed.dtype()), c = h;
  std::vector<Tensor> columns;
  for (int64_t j = 0; j < Wd; ++j) {
    // state-to-state, a 2x1 convolution down the previous column: rows r and r - 1
    Tensor gates = select(is, 1, j);
    if (j > 0) gates = gates + linear(h, same_row) + linear(shift_down(h, 1), row_above);
    std::tie(h, c) = lstm_update(gates, c, 2);
    columns.push_back(h);
    ++sequential_steps;
  }
  return permute(stack(columns, 3), {0, 2, 1, 3});  // [N, hidden, H, W']
}

Tensor DiagonalBiLSTMLayer::forward(const Tensor& x, const Tensor& image) {
  const int64_t W = x.size(3);
  sequential_steps = 0;
  const Tensor fwd = unskew(run(skew(x), *is_fwd_, ss_fwd_same_, ss_fwd_above_), W);
  // right to left: the mirrored image, mirrored back, then one row down (pixel (r, c) may see row
  // r - 1's right-to-left summary, never its own row's right part)
  const Tensor with_pixels = concat({x, image}, 1);
  const Tensor bwd = flip_columns(unskew(run(skew(flip_columns(with_pixels)), *is_bwd_, ss_bwd_same_, ss_bwd_above_), W));
  sequential_steps /= 2;  // the two directions are independent: they could run side by side
  return x + out_->forward(fwd + shift_down(bwd, 2));
}

// ---------------------------------------------------------------- the model

PixelRNN::PixelRNN(const PixelRNNOptions& o, Generator& gen)
    : SequenceModel(o.levels, o.height * o.width, TokenInput::Levels), o_(o) {
  if (o.kind != "row" && o.kind != "diagonal") throw Error("PixelRNN: unknown kind '" + o.kind + "' (row or diagonal)");
  if (o.layers < 1) throw Error("PixelRNN: needs at least one LSTM layer");
  example_shape_ = Shape{1, o.height, o.width};
  input_ = register_module("input", std::make_shared<MaskedConv2d>(1, o.channels, 7, MaskType::A, gen));
  for (int64_t l = 0; l < o.layers; ++l) {
    const std::string name = "layer" + std::to_string(l);
    if (o.kind == "row")
      rows_.push_back(register_module(name, std::make_shared<RowLSTMLayer>(o.channels, o.hidden, gen)));
    else
      diagonals_.push_back(register_module(name, std::make_shared<DiagonalBiLSTMLayer>(o.channels, o.hidden, gen)));
  }
  hidden_out_ = register_module("hidden_out", std::make_shared<nn::Conv2d>(o.channels, o.channels, 1, gen));
  out_ = register_module("out", std::make_shared<nn::Conv2d>(o.channels, o.levels, 1, gen));
}

std::string PixelRNN::config_json() const {
  return nlohmann::json{{"kind", o_.kind},         {"levels", o_.levels},     {"height", o_.height}, {"width", o_.width},
                        {"channels", o_.channels}, {"hidden", o_.hidden},     {"layers", o_.layers}}
      .dump();
}

Tensor PixelRNN::image_logits(const Tensor& images) {
  Tensor h = input_->forward(images);
  for (auto& l : rows_) h = l->forward(h);
  for (auto& l : diagonals_) h = l->forward(h, images);
  return out_->forward(relu(hidden_out_->forward(relu(h))));
}

Tensor PixelRNN::logits(const Tensor& tokens, const Tensor& y) {
  const int64_t N = tokens.size(0);
  start_tokens(N, y);  // (an error if labels are given: PixelRNN is unconditional)
  const Tensor images = reshape(tokens.to(input_->weight.dtype()) * (1.0 / static_cast<double>(o_.levels - 1)),
                                {N, 1, o_.height, o_.width});
  return reshape(permute(image_logits(images), {0, 2, 3, 1}), {N, length(), o_.levels});
}

int64_t PixelRNN::sequential_steps() const {
  int64_t s = 0;
  for (auto& l : rows_) s += l->sequential_steps;
  for (auto& l : diagonals_) s += l->sequential_steps;
  return s;
}

}  // namespace dgm::models
