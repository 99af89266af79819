// lessons/data.cpp — the data the course's models learn from, looked at and checked.
//
// 1. The 2-D toys: samples drawn as scatter plots; where the density is known,
//    it integrates to one over the plane (a grid sum), and sample moments
//    match the distribution's.
// 2. Transforms: the logit transform's log-Jacobian against finite differences;
//    uniform dequantization keeps each value inside its bin; binarization.
// 3. The 8x8 digits (17 grey levels) with the reference split, and the
//    uniform model's likelihood, 64 ln 17 nats, every model must beat.
// 4. Fashion-MNIST: sizes, classes, a grid of real images.
// Writes toy_<name>.csv/.png, toy_<name>_density.png (toys with a density), digits_grid.png, fashion_mnist_grid.png, metrics.json.
#include <cmath>
#include <iostream>

#include "autograd/ops.h"
#include "lessons/common/lesson.h"
#include "models/toolkit/datasets.h"
#include "models/toolkit/distributions.h"
#include "models/toolkit/image.h"
#include "models/toolkit/plot.h"
#include "models/toolkit/toy2d.h"
#include "models/toolkit/transforms.h"

using namespace dgm;

namespace {

// The integral of exp(log p) over [-L, L]^2 by the midpoint rule on a grid of m x m cells.
double integrate_density(data::Toy toy, double L, int64_t m) {
  const double h = 2 * L / static_cast<double>(m);
  Tensor pts = Tensor::empty({m * m, 2}, DType::Float64);
  double* p = pts.data<double>();
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < m; ++j) {
      p[2 * (i * m + j)] = -L + (static_cast<double>(i) + 0.5) * h;
      p[2 * (i * m + j) + 1] = -L + (static_cast<double>(j) + 0.5) * h;
    }
  Tensor lp = data::toy_log_prob(toy, pts);
  double total = 0;
  for (int64_t k = 0; k < lp.numel(); ++k) total += std::exp(lp.at(k));
  return total * h * h;
}

// The density as a picture: p(x) on [-4.5, 4.5]^2, brightest at its maximum.
void draw_density(data::Toy toy, const std::string& path) {
  const int64_t S = 180;
  Tensor pts = Tensor::empty({S * S, 2}, DType::Float64);
  for (int64_t r = 0; r < S; ++r)
    for (int64_t c = 0; c < S; ++c) {
      pts.data<double>()[2 * (r * S + c)] = -4.5 + 9.0 * (static_cast<double>(c) + 0.5) / S;
      pts.data<double>()[2 * (r * S + c) + 1] = 4.5 - 9.0 * (static_cast<double>(r) + 0.5) / S;
    }
  Tensor p = exp(data::toy_log_prob(toy, pts));
  Tensor img = reshape(p / max(p).item(), {1, 1, S, S});
  image::save_image_grid(path, img, 1, 2, 0);
}

}  // namespace

int main(int argc, char** argv) {
  lesson::Lesson L("data", "the data sets and transforms the models use, checked and drawn");
  return L.run(argc, argv, [&] {
    const auto& opt = L.options();
    Generator gen(opt.seed);

    // ------------------------------------------------------------ 1. toys
    std::cout << "\n-- 1. Built-in 2-D toys: samples, and densities that integrate to one\n";
    const int64_t n_toy = opt.quick ? 2000 : 20000;
    for (data::Toy toy : data::all_toys()) {
      const std::string name = data::toy_name(toy);
      Tensor x = data::sample_toy(toy, n_toy, gen);
      std::vector<std::vector<double>> rows;
      for (int64_t i = 0; i < std::min<int64_t>(n_toy, 5000); ++i) rows.push_back({x.at(2 * i), x.at(2 * i + 1)});
      L.write_csv("toy_" + name + ".csv", {"x", "y"}, rows);
      plot::scatter_plot(L.path("toy_" + name + ".csv"), L.path("toy_" + name + ".png"), name + " (" + std::to_string(rows.size()) + " samples)", 0, 4.5);
      if (data::toy_has_density(toy)) {
        const double integral = integrate_density(toy, 5.0, opt.quick ? 500 : 1000);
        L.check_close("integral of p(x) over [-5, 5]^2 for " + name, integral, 1.0, 1e-3);
        L.metric("integral_" + name, integral);
        draw_density(toy, L.path("toy_" + name + "_density.png"));
      }
    }
    {
      // The mixture's mean is 0.3 m1 + 0.7 m2 = (0.75, 0.35); compare with the sample mean.
      Tensor x = data::sample_toy(data::Toy::GaussianMixture, n_toy, gen).to(DType::Float64);
      Tensor m = mean(x, {0});
      // per-coordinate variance of the mixture: sum_k w_k (S_k + m_k^2) - mean^2
      const double var_x = 0.3 * (0.5 + 1.0) + 0.7 * (0.3 + 2.25) - 0.75 * 0.75;
      L.check_close("gmm sample mean of x vs 0.3*(-1) + 0.7*1.5 (tolerance 4 standard errors)", m.at(0), 0.75,
                    4 * std::sqrt(var_x / static_cast<double>(n_toy)));
    }

    // ------------------------------------------------------------ 2. transforms
    std::cout << "\n-- 2. Transforms: logit's log|det J|, dequantization, binarization\n";
    {
      Tensor y = Tensor::from_vector(std::vector<double>{0.3, 0.9, 0.01}, {1, 3});
      auto r = data::logit_transform(y, 0.05);
      // finite difference of z_i(y_i), summed in log: log|dz/dy| = sum_i log(dz_i/dy_i)
      double fd = 0;
      const double h = 1e-6;
      for (int i = 0; i < 3; ++i) {
        Tensor up = y.contiguous_copy(), dn = y.contiguous_copy();
        up.data<double>()[i] += h;
        dn.data<double>()[i] -= h;
        fd += std::log((data::logit_transform(up).z.at(i) - data::logit_transform(dn).z.at(i)) / (2 * h));
      }
      L.check_close("logit transform: log|det dz/dy| vs finite differences", r.log_det.at(0), fd, 1e-6);
      L.check_close("logit_inverse(logit(y)) = y", data::logit_inverse(r.z).at(1), 0.9, 1e-12);

      Tensor levels = Tensor::from_vector(std::vector<double>{0, 1.0 / 16, 0.5, 1}, {4});
      int64_t outside = 0;
      for (int rep = 0; rep < 1000; ++rep) {
        Tensor d = data::dequantize_uniform(levels, 17, gen);
        for (int i = 0; i < 4; ++i) {
          const double k = std::round(levels.at(i) * 16);
          outside += !(d.at(i) >= k / 17 && d.at(i) < (k + 1) / 17);
        }
      }
      L.check_close("dequantized values outside their bin [k/17, (k+1)/17) in 4000 draws", double(outside), 0, 0);

      Tensor p = Tensor::full({20000}, 0.3);
      L.check_close("dynamic binarization of 0.3: mean of 20000 draws (4 standard errors)",
                    mean(data::binarize_dynamic(p, gen)).item(), 0.3, 4 * std::sqrt(0.21 / 20000));
      // Two dynamic binarizations of the same image disagree where one draw is 1 and
      // the other 0: with probability 2 p (1 - p) = 0.42 per pixel. A static one is
      // one fixed draw: its mean is p, and it is what test sets use.
      Tensor d1 = data::binarize_dynamic(p, gen), d2 = data::binarize_dynamic(p, gen);
      L.check_close("two dynamic binarizations disagree on a share 2 p (1 - p) of the pixels (4 standard errors)",
                    mean(abs(d1 - d2)).item(), 0.42, 4 * std::sqrt(0.42 * 0.58 / 20000));
      L.check_close("static binarization of 0.3: mean of its 20000 bits (4 standard errors)",
                    mean(data::binarize_static(p, 7)).item(), 0.3, 4 * std::sqrt(0.21 / 20000));
    }

    // ------------------------------------------------------------ 3. digits
    std::cout << "\n-- 3. The scikit-learn 8x8 digits, 17 grey levels\n";
    try {
      auto train = data::digits(data::Split::Train, opt.data), val = data::digits(data::Split::Validation, opt.data),
           test = data::digits(data::Split::Test, opt.data);
      L.check_close("digits split: train + validation + test = 1797", double(train.size() + val.size() + test.size()), 1797, 0);
      L.check_close("digits: the brightest pixel is level 16 of 16", max(train.images).item() * 16, 16, 1e-6);
      // The uniform model by the engine: equal logits over 17 levels, its
      // log-likelihood read off at each digit's real pixel values, against 64 ln 17.
      Tensor idx = dist::levels_to_index(reshape(test.images, {test.size(), 64}), 17);
      const dist::Categorical uniform{Tensor::zeros({test.size(), 17, 64}, DType::Float64), 1};
      const double uniform_nll = -mean(sum(uniform.log_prob(idx), {1})).item();
      L.check_close("uniform model's NLL on the test digits (engine) vs 64 ln 17 nats (closed form)", uniform_nll,
                    64 * std::log(17.0), 1e-9);
      L.metric("digits_uniform_nll_nats", uniform_nll);
      image::save_image_grid(L.path("digits_grid.png"), slice(train.images, 0, 0, 64), 8, 6, 2);
      std::cout << "   wrote " << L.path("digits_grid.png") << "\n";
    } catch (const data::DataNotFound& e) {  // only a data set that is not installed is skipped
      std::cout << "   skipped: " << e.what() << "\n";
    }
    {
      auto syn = data::synthetic_digits(data::Split::Train);
      image::save_image_grid(L.path("synthetic_digits_grid.png"), slice(syn.images, 0, 0, 64), 8, 6, 2);
      std::cout << "   wrote synthetic_digits_grid.png (the built-in stand-in tests use when the digits are not installed)\n";
    }

    // ------------------------------------------------------------ 4. Fashion-MNIST
    std::cout << "\n-- 4. Fashion-MNIST\n";
    try {
      const int64_t limit = opt.quick ? 1000 : 0;
      auto train = data::fashion_mnist(data::Split::Train, opt.data, limit);
      auto test = data::fashion_mnist(data::Split::Test, opt.data, limit);
      if (!opt.quick) {
        L.check_close("Fashion-MNIST: 60000 training images", double(train.size()), 60000, 0);
        L.check_close("Fashion-MNIST: 10000 test images", double(test.size()), 10000, 0);
        std::vector<int64_t> counts(10, 0);
        for (int64_t i = 0; i < train.size(); ++i) counts[static_cast<size_t>(train.labels.at(i))]++;
        L.check_close("Fashion-MNIST: smallest class count in training (6000 each)",
                      double(*std::min_element(counts.begin(), counts.end())), 6000, 0);
      }
      L.check_close("Fashion-MNIST: pixels lie in [0, 1] (max)", max(train.images).item(), 1.0, 0);
      L.metric("fashion_mnist_train_images", double(train.size()));
      L.metric("fashion_mnist_mean_pixel", mean(train.images).item());
      image::save_image_grid(L.path("fashion_mnist_grid.png"), slice(train.images, 0, 0, 100), 10, 2, 2);
      image::save_image_grid(L.path("fashion_mnist_binarized.png"),
                             data::binarize_static(slice(train.images, 0, 0, 100), 0), 10, 2, 2);
      std::cout << "   wrote " << L.path("fashion_mnist_grid.png") << " and fashion_mnist_binarized.png\n";
    } catch (const data::DataNotFound& e) {  // only a data set that is not installed is skipped
      std::cout << "   skipped: " << e.what() << "\n";
    }
  });
}
