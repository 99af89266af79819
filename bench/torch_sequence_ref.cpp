// bench/torch_sequence_ref.cpp — the libtorch twins of bench_train's workloads l_transformer_b64
// and m_lstm_b64 (lesson_sequence's families at the recipes bench_transformer and bench_lstm),
// in the output format and with the timing rules of ../shared/bench/torch_ref.cpp, so
// bench/compare.sh puts them side by side. Built by compare.sh only when libtorch-dev is installed.
//
//   torch_sequence_ref --threads T [--only transformer,lstm] [--quick]
//
// n_transformer_sample_b64: the same Transformer drawing 64 sequences of 64 tokens through a key/value
// cache (no graph), in ms per 1,000 tokens.
// Both: 64 sequences of 64 tokens over 17 levels, read shifted right behind a start token
// (an embedding of 18 rows), -mean log p(x) summed over positions, Adam 1e-3; one step is
// forward, backward and Adam, as bench_train's train_bench.
//   Transformer (models/transformer.cpp): width 128, 4 pre-LayerNorm blocks, 4 heads, learned
//     positions, qkv / proj / fc1 (4x) / fc2 Linear layers, exact GELU, causal attention as minGPT
//     writes it (q k^T / sqrt d, masked_fill -inf, softmax, @ v: Debian's libtorch 1.13 has no
//     scaled_dot_product_attention), LayerNorm, Linear head.
//   LSTM (models/rnn.cpp): embedding 64, torch::nn::LSTM hidden 256 (one layer), Linear head.
#include <torch/torch.h>

#include "bench/timing.h"

#include <cmath>
#include <cstdio>
#include <vector>

namespace {

struct BlockImpl : torch::nn::Module {
  torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr};
  torch::nn::Linear qkv{nullptr}, proj{nullptr}, fc1{nullptr}, fc2{nullptr};
  int64_t C, H;
  torch::Tensor future;  // [64, 64]: true above the diagonal
  BlockImpl(int64_t width, int64_t heads) : C(width), H(heads) {
    future = torch::ones({64, 64}, torch::kBool).triu(1);
    ln1 = register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({C})));
    ln2 = register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({C})));
    qkv = register_module("qkv", torch::nn::Linear(C, 3 * C));
    proj = register_module("proj", torch::nn::Linear(C, C));
    fc1 = register_module("fc1", torch::nn::Linear(C, 4 * C));
    fc2 = register_module("fc2", torch::nn::Linear(4 * C, C));
  }
  // One new position with a cache of the keys and values before it ([N, H, t, d], grown here).
  torch::Tensor step(const torch::Tensor& h, torch::Tensor& keys, torch::Tensor& values) {
    const int64_t N = h.size(0), d = C / H;
    auto parts = qkv(ln1(h)).view({N, 1, 3, H, d}).permute({2, 0, 3, 1, 4});
    keys = keys.defined() ? torch::cat({keys, parts[1]}, 2) : parts[1];
    values = values.defined() ? torch::cat({values, parts[2]}, 2) : parts[2];
    auto att = torch::softmax(torch::matmul(parts[0], keys.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(d))), -1);
    auto a = h + proj(torch::matmul(att, values).transpose(1, 2).reshape({N, 1, C}));
    return a + fc2(torch::gelu(fc1(ln2(a))));
  }
  torch::Tensor forward(const torch::Tensor& h) {
    const int64_t N = h.size(0), T = h.size(1), d = C / H;
    auto parts = qkv(ln1(h)).view({N, T, 3, H, d}).permute({2, 0, 3, 1, 4});
    auto att = torch::matmul(parts[0], parts[1].transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(d)));
    att = torch::softmax(att.masked_fill(future.slice(0, 0, T).slice(1, 0, T), -INFINITY), -1);
    auto y = torch::matmul(att, parts[2]);
    auto a = h + proj(y.transpose(1, 2).reshape({N, T, C}));
    return a + fc2(torch::gelu(fc1(ln2(a))));
  }
};
TORCH_MODULE(Block);

struct TransformerImpl : torch::nn::Module {
  torch::nn::Embedding tok{nullptr};
  torch::Tensor pos;
  torch::nn::ModuleList blocks;
  torch::nn::LayerNorm lnf{nullptr};
  torch::nn::Linear head{nullptr};
  TransformerImpl(int64_t V, int64_t L, int64_t C, int64_t layers, int64_t heads) {
    tok = register_module("tok", torch::nn::Embedding(V + 1, C));
    pos = register_parameter("pos", torch::randn({L, C}) * 0.02);
    blocks = register_module("blocks", torch::nn::ModuleList());
    for (int64_t l = 0; l < layers; ++l) blocks->push_back(Block(C, heads));
    lnf = register_module("lnf", torch::nn::LayerNorm(torch::nn::LayerNormOptions({C})));
    head = register_module("head", torch::nn::Linear(C, V));
  }
  torch::Tensor forward(const torch::Tensor& inputs) {
    auto h = tok(inputs) + pos;
    for (auto& b : *blocks) h = b->as<Block>()->forward(h);
    return head(lnf(h));
  }
  // n sequences of L tokens, one at a time through each block's key/value cache
  torch::Tensor sample(int64_t n, int64_t V, int64_t L) {
    std::vector<torch::Tensor> keys(blocks->size()), values(blocks->size());
    auto token = torch::full({n, 1}, V, torch::kLong);
    std::vector<torch::Tensor> out;
    for (int64_t t = 0; t < L; ++t) {
      auto h = tok(token) + pos.slice(0, t, t + 1);
      for (size_t l = 0; l < blocks->size(); ++l) h = (*blocks)[l]->as<Block>()->step(h, keys[l], values[l]);
      token = torch::multinomial(torch::softmax(head(lnf(h)).squeeze(1), -1), 1);
      out.push_back(token);
    }
    return torch::cat(out, 1);
  }
};
TORCH_MODULE(Transformer);

struct LSTMLMImpl : torch::nn::Module {
  torch::nn::Embedding tok{nullptr};
  torch::nn::LSTM lstm{nullptr};
  torch::nn::Linear head{nullptr};
  LSTMLMImpl(int64_t V, int64_t E, int64_t Hd) {
    tok = register_module("tok", torch::nn::Embedding(V + 1, E));
    lstm = register_module("lstm", torch::nn::LSTM(torch::nn::LSTMOptions(E, Hd).batch_first(true)));
    head = register_module("head", torch::nn::Linear(Hd, V));
  }
  torch::Tensor forward(const torch::Tensor& inputs) { return head(std::get<0>(lstm(tok(inputs)))); }
};
TORCH_MODULE(LSTMLM);

// -mean over sequences of the summed log-likelihoods of the 64 positions
torch::Tensor nll(const torch::Tensor& logits, const torch::Tensor& targets) {
  return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(2)}), targets.reshape({-1}),
                                              torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum)) /
         targets.size(0);
}

}  // namespace

int main(int argc, char** argv) {
  const bench::TwinArgs args = bench::parse_twin_args(argc, argv);
  if (!args.wants("transformer") && !args.wants("lstm")) return 0;
  torch::set_num_threads(args.threads);
  bench::set_openblas_threads(args.threads);
  std::printf("# torch %s (sequence twin), at::get_num_threads()=%d\n", TORCH_VERSION, torch::get_num_threads());
  bench::print_columns();
  torch::manual_seed(0);
  const int64_t V = 17, L = 64, N = 64;
  const auto targets = torch::randint(0, V, {N, L});
  const auto inputs = torch::cat({torch::full({N, 1}, V, torch::kLong), targets.slice(1, 0, L - 1)}, 1);
  if (args.wants("transformer")) {
    Transformer m(V, L, 128, 4, 4);
    torch::optim::Adam opt(m->parameters(), torch::optim::AdamOptions(1e-3));
    const double C = 128, layers = 4;  // the same count as bench_train's
    const double per_token = 2 * (layers * 12 * C * C + C * V) + layers * 4 * L * C;
    bench::time_and_print("l_transformer_b64", args.threads, args.quick, 3 * per_token * N * L / 1e6, [&] {
      opt.zero_grad();
      nll(m->forward(inputs), targets).backward();
      opt.step();
    });
    m->eval();
    torch::NoGradGuard no_grad;
    bench::time_and_print("n_transformer_sample_b64", args.threads, args.quick, 0, [&] { m->sample(N, V, L); }, N * L / 1000.0,
                          "ms/1k_tok");
  }
  if (args.wants("lstm")) {
    LSTMLM m(V, 64, 256);
    torch::optim::Adam opt(m->parameters(), torch::optim::AdamOptions(1e-3));
    const double H = 256, E = 64;
    const double per_token = 2 * (4 * H * (E + H) + H * V);
    bench::time_and_print("m_lstm_b64", args.threads, args.quick, 3 * per_token * N * L / 1e6, [&] {
      opt.zero_grad();
      nll(m->forward(inputs), targets).backward();
      opt.step();
    });
  }
  return 0;
}
