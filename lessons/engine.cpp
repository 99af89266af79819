// lessons/engine.cpp — the engine at work, before any generative model.
//
// 1. Reverse mode on one neuron, against the chain rule done by hand.
// 2. Broadcasting: a bias added to every row gets the sum of their gradients.
// 3. The whole gradient of an MLP's loss against finite differences (float64).
// 4. Double backward: a Hessian-vector product against differences of gradients.
// 5. Training: an MLP classifies two moons; the loss falls, the test accuracy rises.
// 6. Memory: the graph's buffers are freed by backward.
// 7. Reproducibility: the same seed gives bit-identical training.
// Writes loss.csv + loss.png, boundary.png (the learned decision boundary), graph.dot
// (the graph behind one loss, for `dot -Tpng`), metrics.json.
#include <cmath>
#include <iostream>

#include "autograd/gradcheck.h"
#include "autograd/graph.h"
#include "autograd/graphviz.h"
#include "autograd/nn.h"
#include "autograd/optim.h"
#include "lessons/common/lesson.h"
#include "models/toolkit/image.h"
#include "models/toolkit/plot.h"
#include "models/toolkit/toy2d.h"
#include "models/toolkit/trainer.h"

using namespace dgm;

namespace {

// The classifier: 2 -> hidden -> hidden -> 2 logits, tanh in between.
std::shared_ptr<nn::Sequential> make_model(int hidden, Generator& gen) {
  return nn::mlp<nn::Tanh>({2, hidden, hidden, 2}, gen);
}

double accuracy(nn::Module& model, const data::Labelled2D& d) {
  NoGradGuard ng;
  Tensor pred = argmax(model.forward(d.x), 1);
  int64_t correct = 0;
  for (int64_t i = 0; i < pred.numel(); ++i) correct += pred.at(i) == d.labels.at(i);
  return static_cast<double>(correct) / static_cast<double>(pred.numel());
}

struct TrainResult {
  std::vector<std::vector<double>> curve;  // epoch, train loss, test loss, test accuracy
  double seconds = 0;
};

// Adam (lr 0.01) on the cross-entropy, through the shared trainer: shuffled
// minibatches, the last short one dropped; test loss and accuracy every epoch.
TrainResult train_classifier(nn::Module& model, const data::Labelled2D& tr, const data::Labelled2D& te, int epochs,
                  int64_t batch, Generator& gen, bool show_progress, const std::string& out_dir = "", double lr = 0.01) {
  train::FitOptions o;
  o.epochs = epochs;
  o.batch_size = batch;
  o.lr = lr;
  o.drop_last = true;
  o.keep_best = false;  // the test set is watched, never selected on
  o.progress = show_progress;
  o.tag = "train";
  o.out_dir = out_dir;
  o.model_name = "mlp classifier (nn::mlp<nn::Tanh>, widths 2-h-h-2)";
  o.model_config = "{\"widths\": [2, " + std::to_string(model.parameters()[0].size(0)) + ", " +
                   std::to_string(model.parameters()[0].size(0)) + ", 2], \"activation\": \"tanh\"}";
  o.data_transform = "two moons (scikit-learn's make_moons), points as they are, labels 0 and 1";
  o.checkpoint = !out_dir.empty();
  o.train_column = "train_loss_nats";
  o.validation_column = "test_loss_nats";
  o.validation_label = "test";
  o.curve_title = "two moons: cross-entropy per epoch";
  o.y_label = "nats";
  o.log_y = true;
  o.extra_columns = {"test_accuracy"};
  o.extra = [&] { return std::vector<double>{accuracy(model, te)}; };
  auto batch_loss = [&](const Tensor& idx) {
    return cross_entropy(model.forward(index_select(tr.x, 0, idx)), index_select(tr.labels, 0, idx));
  };
  auto test_loss = [&] {
    NoGradGuard ng;
    return cross_entropy(model.forward(te.x), te.labels).item();
  };
  train::FitResult r = train::fit(model, tr.x.size(0), batch_loss, test_loss, gen, o);
  return {r.curve, r.seconds};
}

// The decision boundary: each pixel coloured by p(class 1 | pixel), data on top.
void draw_boundary(nn::Module& model, const data::Labelled2D& d, const std::string& path) {
  const int W = 400, H = 300;
  const double x0 = -1.5, x1 = 2.5, y0 = -1.0, y1 = 1.5;
  image::RGB img(W, H);
  Tensor grid = Tensor::empty({int64_t(W) * H, 2});
  float* pg = grid.data<float>();
  for (int py = 0; py < H; ++py)
    for (int px = 0; px < W; ++px) {
      pg[2 * (py * W + px)] = static_cast<float>(x0 + (x1 - x0) * (px + 0.5) / W);
      pg[2 * (py * W + px) + 1] = static_cast<float>(y1 - (y1 - y0) * (py + 0.5) / H);
    }
  NoGradGuard ng;
  Tensor p1 = softmax(model.forward(grid), 1);
  for (int i = 0; i < W * H; ++i) {
    const double p = p1.at(2 * i + 1);
    img.set(i % W, i / W, static_cast<uint8_t>(255 - 90 * p), static_cast<uint8_t>(225 - 40 * std::abs(p - 0.5)),
            static_cast<uint8_t>(165 + 90 * p));
  }
  for (int64_t i = 0; i < d.x.size(0); ++i) {
    const int px = static_cast<int>((d.x.at(2 * i) - x0) / (x1 - x0) * W);
    const int py = static_cast<int>((y1 - d.x.at(2 * i + 1)) / (y1 - y0) * H);
    if (d.labels.at(i) == 0) img.disc(px, py, 2, 200, 40, 30);
    else img.disc(px, py, 2, 30, 60, 200);
  }
  image::write_png(path, img);
}

}  // namespace

int main(int argc, char** argv) {
  lesson::Lesson L("engine", "reverse-mode autodiff at work: gradients checked, an MLP trained on two moons");
  int hidden = 32;
  L.app().add_option("--hidden", hidden, "Hidden units per layer")->capture_default_str()->check(CLI::PositiveNumber);
  return L.run(argc, argv, [&] {
    const auto& opt = L.options();

    // ------------------------------------------------------------ 1. one neuron by hand
    std::cout << "\n-- 1. Reverse mode on one neuron: y = tanh(w x + b)\n"
                 "   chain rule by hand: dy/dw = (1 - y^2) x,  dy/db = 1 - y^2,  dy/dx = (1 - y^2) w\n";
    {
      const double xv = 0.7, wv = -1.3, bv = 0.4;
      Tensor x = Tensor::scalar(xv, DType::Float64).set_requires_grad(true).set_name("x");
      Tensor w = Tensor::scalar(wv, DType::Float64).set_requires_grad(true).set_name("w");
      Tensor b = Tensor::scalar(bv, DType::Float64).set_requires_grad(true).set_name("b");
      Tensor y = tanh(w * x + b);
      y.backward();
      const double yv = std::tanh(wv * xv + bv), local = 1 - yv * yv;
      L.check_close("dy/dw by backward = (1 - y^2) x by hand", w.grad().item(), local * xv, 1e-15);
      L.check_close("dy/db by backward = 1 - y^2 by hand", b.grad().item(), local, 1e-15);
      L.check_close("dy/dx by backward = (1 - y^2) w by hand", x.grad().item(), local * wv, 1e-15);
    }

    // ------------------------------------------------------------ 2. broadcasting
    std::cout << "\n-- 2. Broadcasting: L = sum(X W^T + b) over a batch of 5 rows\n"
                 "   b is added to every row, so dL/db_j = 5 (the gradient is summed over the broadcast axis)\n";
    {
      Generator g(opt.seed);
      Tensor X = g.normal({5, 3}, 0, 1, DType::Float64);
      Tensor W = g.normal({4, 3}, 0, 1, DType::Float64).set_requires_grad(true);
      Tensor b = Tensor::zeros({4}, DType::Float64).set_requires_grad(true);
      sum(linear(X, W, b)).backward();
      L.check_close("dL/db_0 = batch size", b.grad().at(0), 5.0, 0.0);
      double col = 0;
      for (int i = 0; i < 5; ++i) col += X.at(i * 3 + 1);
      L.check_close("dL/dW_01 = sum_i X_i1", W.grad().at(1), col, 1e-12);
    }

    // ------------------------------------------------------------ 3. gradcheck of a whole MLP
    std::cout << "\n-- 3. Every parameter's gradient of an MLP loss against central differences (float64)\n";
    Generator gen(opt.seed);
    auto train_set = data::two_moons(opt.quick ? 400 : 2000, 0.1, gen);
    auto test_set = data::two_moons(opt.quick ? 400 : 2000, 0.1, gen);
    {
      Generator g(opt.seed + 1);
      auto probe = make_model(8, g);
      probe->to(DType::Float64);
      Tensor xs = slice(train_set.x, 0, 0, 16).to(DType::Float64);
      Tensor ys = slice(train_set.labels, 0, 0, 16);
      std::vector<Tensor> params = probe->parameters();
      auto loss_of = [&](const std::vector<Tensor>& p) {
        Tensor h = tanh(linear(xs, p[0], p[1]));
        h = tanh(linear(h, p[2], p[3]));
        return cross_entropy(linear(h, p[4], p[5]), ys);
      };
      GradcheckReport rep = gradcheck(loss_of, params);
      std::cout << "   " << rep.str() << "\n";
      L.check_close("worst |analytic - numeric| over all " + std::to_string(rep.checked) + " parameters",
                    rep.analytic, rep.numeric, 1e-7);
      L.metric("gradcheck_worst_abs_error", rep.abs_error);
    }

    // ------------------------------------------------------------ 4. double backward
    std::cout << "\n-- 4. Double backward: H v from backward(create_graph) against (g(x + h v) - g(x - h v)) / 2h\n";
    {
      Generator g(opt.seed + 2);
      Tensor x = g.normal({3}, 0, 1, DType::Float64).set_requires_grad(true);
      Tensor v = g.normal({3}, 0, 1, DType::Float64);
      auto f = [](const Tensor& t) { return sum(exp(t) * tanh(t)) + square(sum(t * t)); };
      Tensor gx = grad({f(x)}, {x}, {}, false, /*create_graph=*/true)[0];
      Tensor hv = grad({sum(gx * v)}, {x})[0];
      const double h = 1e-5;
      auto grad_at = [&](double s) {
        Tensor xs = (x.detach() + v * s).set_requires_grad(true);
        return grad({f(xs)}, {xs})[0];
      };
      Tensor fd = (grad_at(h) - grad_at(-h)) / (2 * h);
      double worst = 0;
      for (int i = 0; i < 3; ++i) worst = std::max(worst, std::abs(hv.at(i) - fd.at(i)));
      L.check_close("H v, component 0", hv.at(0), fd.at(0), 1e-6);
      L.check_close("max_i |(H v)_i - finite difference|", worst, 0.0, 1e-6);
    }

    // ------------------------------------------------------------ 5. training
    const int epochs = L.epochs(15, 60);
    const double lr = L.lr(0.01);
    std::cout << "\n-- 5. Training a " << hidden << "-unit tanh MLP on two moons (" << train_set.x.size(0)
              << " points, batch 64, Adam lr " << lr << ", " << epochs << " epochs)\n";
    auto model = make_model(hidden, gen);
    double initial_loss;
    {
      NoGradGuard ng;
      initial_loss = cross_entropy(model->forward(train_set.x), train_set.labels).item();
    }
    TrainResult tr = train_classifier(*model, train_set, test_set, epochs, 64, gen, true, opt.out, lr);
    const double final_train = tr.curve.back()[1], final_test = tr.curve.back()[2], acc = tr.curve.back()[3];
    std::cout << "   initial loss " << initial_loss << " nats, final train " << final_train << ", test "
              << final_test << ", test accuracy " << acc << " (" << tr.seconds << " s)\n";
    L.check_le("final train loss is below a fifth of the initial loss", final_train, initial_loss / 5);
    L.check_le("test error rate (two moons with noise 0.1 are separable) at most 3%", 1.0 - acc, 0.03);
    draw_boundary(*model, test_set, L.path("boundary.png"));
    std::cout << "   wrote " << L.path("train_curve.csv") << " (.png) and " << L.path("boundary.png") << "\n";
    L.metric("initial_loss_nats", initial_loss);
    L.metric("train_loss_nats", final_train);
    L.metric("test_loss_nats", final_test);
    L.metric("test_accuracy", acc);
    L.metric("epochs", epochs);
    L.metric("parameters", static_cast<double>(model->num_parameters()));

    // ------------------------------------------------------------ 6. memory
    std::cout << "\n-- 6. The graph of one loss, and what backward frees\n";
    {
      model->zero_grad();  // drop the last training step's gradients first
      const LiveCounts before = live_counts();
      Tensor loss = cross_entropy(model->forward(slice(test_set.x, 0, 0, 4)), slice(test_set.labels, 0, 0, 4))
                        .set_name("loss");
      L.write_text("graph.dot", to_dot(loss));
      const LiveCounts during = live_counts();
      loss.backward();
      model->zero_grad();
      loss = Tensor();
      const LiveCounts after = live_counts();
      std::cout << "   graph: " << during.nodes - before.nodes << " nodes, " << during.bytes - before.bytes
                << " bytes held; wrote " << L.path("graph.dot") << " (render: dot -Tpng graph.dot -o graph.png)\n";
      L.check_close("graph nodes alive after backward and dropping the loss", double(after.nodes - before.nodes), 0, 0);
      L.check_close("tensor bytes alive after backward and dropping the loss", double(after.bytes - before.bytes), 0, 0);
    }

    // ------------------------------------------------------------ 7. reproducibility
    std::cout << "\n-- 7. The same seed trains to the same bits\n";
    {
      auto run = [&] {
        Generator g(opt.seed + 3);
        auto m = make_model(8, g);
        auto small = data::two_moons(128, 0.1, g);
        return train_classifier(*m, small, small, 3, 32, g, false).curve.back()[1];
      };
      const double a = run(), b = run();
      L.check_close("final loss of run 1 vs run 2", a, b, 0.0);
    }
  });
}
