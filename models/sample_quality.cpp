// dgm/models/sample_quality.cpp
#include "models/sample_quality.h"

#include <algorithm>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "autograd/checkpoint.h"
#include "autograd/graph.h"
#include "models/toolkit/linalg.h"
#include "models/toolkit/trainer.h"

namespace dgm::models {

ImageClassifier::ImageClassifier(int64_t channels, int64_t height, int64_t width, int64_t classes, Generator& gen,
                                 int64_t features)
    : channels_(channels), height_(height), width_(width), classes_(classes), features_(features) {
  if (height % 4 || width % 4)
    throw Error("ImageClassifier: two 2x2 poolings need H and W divisible by 4, got " + std::to_string(height) + "x" +
                std::to_string(width));
  conv1_ = register_module("conv1", std::make_shared<nn::Conv2d>(channels, 32, 3, gen, 1, 1));
  conv2_ = register_module("conv2", std::make_shared<nn::Conv2d>(32, 64, 3, gen, 1, 1));
  fc_ = register_module("fc", std::make_shared<nn::Linear>(64 * (height / 4) * (width / 4), features, gen));
  out_ = register_module("out", std::make_shared<nn::Linear>(features, classes, gen));
}

Tensor ImageClassifier::features(const Tensor& x) {
  if (x.dim() != 4 || x.size(1) != channels_ || x.size(2) != height_ || x.size(3) != width_)
    throw Error("ImageClassifier: expects images [N, " + std::to_string(channels_) + ", " + std::to_string(height_) + ", " +
                std::to_string(width_) + "], got " + x.shape().str());
  Tensor h = avg_pool2d(relu(conv1_->forward(x)), 2);
  h = avg_pool2d(relu(conv2_->forward(h)), 2);
  return relu(fc_->forward(flatten(h, 1)));
}

Tensor ImageClassifier::forward(const Tensor& x) { return out_->forward(features(x)); }

Tensor ImageClassifier::features_of(const Tensor& images, int64_t chunk) {
  NoGradGuard ng;
  std::vector<Tensor> parts;
  for (int64_t b = 0; b < images.size(0); b += chunk) parts.push_back(features(slice(images, 0, b, std::min(b + chunk, images.size(0)))));
  return concat(parts, 0);
}

Tensor ImageClassifier::classify_features(const Tensor& features) {
  NoGradGuard ng;
  return argmax(out_->forward(features), 1);
}

Tensor ImageClassifier::predict(const Tensor& images, int64_t chunk) { return classify_features(features_of(images, chunk)); }

double ImageClassifier::accuracy(const data::ImageSet& set) {
  const Tensor pred = predict(set.images);
  int64_t correct = 0;
  for (int64_t i = 0; i < pred.numel(); ++i) correct += pred.at(i) == set.labels.at(i);
  return static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(pred.numel(), 1));
}

ClassifierFit fit_classifier(ImageClassifier& clf, const data::ImageSet& train, const data::ImageSet& test, Generator& gen,
                             const ClassifierOptions& o) {
  ClassifierFit r;
  if (!o.cache.empty() && std::filesystem::exists(o.cache) && !o.retrain) {
    try {
      load_checkpoint(clf, o.cache);  // checks every tensor before it copies one
    } catch (const Error& e) {
      throw Error(std::string("the cached domain classifier does not fit this classifier: ") + e.what() +
                  " (pass --retrain to train it anew, or delete the file)");
    }
    r.from_cache = true;
    r.test_accuracy = clf.accuracy(test);
    return r;
  }
  if (o.retrain && !o.cache.empty() && std::filesystem::exists(o.cache)) r.note = "--retrain: the cached classifier " + o.cache + " is trained anew";
  const int64_t n_val = std::min(o.validation, train.size() / 5);
  const data::ImageSet fit_set = train.slice(0, train.size() - n_val), val = train.slice(train.size() - n_val, train.size());
  train::FitOptions f;
  f.epochs = o.epochs;
  f.batch_size = o.batch_size;
  f.lr = o.lr;
  f.max_seconds = o.max_seconds;
  f.progress = o.progress;
  f.tag = "classifier";
  f.checkpoint = false;
  auto batch_loss = [&](const Tensor& idx) {
    return cross_entropy(clf.forward(index_select(fit_set.images, 0, idx)), index_select(fit_set.labels, 0, idx));
  };
  auto validation_error = [&] { return n_val > 0 ? 1 - clf.accuracy(val) : 0.0; };  // keep the best epoch
  train::FitResult fr = train::fit(clf, fit_set.size(), batch_loss, validation_error, gen, f);
  r.seconds = fr.seconds;
  r.test_accuracy = clf.accuracy(test);
  if (!o.cache.empty()) {
    std::filesystem::path p(o.cache);
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
    save_checkpoint(clf, o.cache, {{"model", "ImageClassifier"}, {"test_accuracy", std::to_string(r.test_accuracy)}});
    nlohmann::ordered_json j;  // beside it, as the trainer writes for density models
    j["model"] = "ImageClassifier";
    j["config"] = {{"channels", clf.channels()}, {"height", clf.height()}, {"width", clf.width()}, {"classes", clf.classes()},
                   {"features", clf.feature_count()}};
    j["data_transform"] = "images in [0, 1] as the data set stores them; the labels";
    j["test_accuracy"] = r.test_accuracy, j["seconds"] = r.seconds;
    save_text_atomically(std::filesystem::path(o.cache).replace_extension(".json").string(), j.dump(2) + "\n");
  }
  return r;
}

FeatureStats feature_stats(const Tensor& features) {
  if (features.dim() != 2 || features.size(0) < 2)
    throw Error("feature_stats: needs features [N >= 2, F], got " + features.shape().str());
  NoGradGuard ng;
  FeatureStats s;
  const Tensor f = features.to(DType::Float64);
  s.count = f.size(0);
  s.mean = mean(f, {0});
  const Tensor c = f - s.mean;  // centred rows
  s.cov = mm(c, c, true, false) / static_cast<double>(s.count - 1);
  return s;
}

double frechet_distance(const FeatureStats& a, const FeatureStats& b) {
  if (a.mean.shape() != b.mean.shape())
    throw Error("frechet_distance: feature sizes differ: " + a.mean.shape().str() + " vs " + b.mean.shape().str());
  NoGradGuard ng;
  const double mean_term = sum(square(a.mean - b.mean)).item();
  // tr (S_a^1/2 S_b S_a^1/2)^1/2: the inner matrix is symmetric PSD, so its square root is too
  const Tensor ra = linalg::sqrtm_psd(a.cov);
  const Tensor inner = mm(mm(ra, b.cov), ra);
  const Tensor cross = linalg::sqrtm_psd((inner + transpose(inner, 0, 1)) * 0.5);  // symmetric up to rounding
  double tr = 0;
  for (int64_t i = 0; i < a.cov.size(0); ++i) tr += a.cov.at(i * a.cov.size(0) + i) + b.cov.at(i * b.cov.size(0) + i) - 2 * cross.at(i * cross.size(0) + i);
  return mean_term + tr;
}

SampleQuality sample_quality(ImageClassifier& clf, const Tensor& images, const FeatureStats& reference) {
  SampleQuality q;
  q.count = images.size(0);
  const Tensor features = clf.features_of(images);  // the convolutions once, for both measures
  q.fid_domain = frechet_distance(feature_stats(features), reference);
  const Tensor pred = clf.classify_features(features);
  q.class_shares.assign(static_cast<size_t>(clf.classes()), 0.0);
  for (int64_t i = 0; i < pred.numel(); ++i) q.class_shares[static_cast<size_t>(pred.at(i))] += 1.0 / static_cast<double>(pred.numel());
  for (double s : q.class_shares) q.classes_covered += s >= 0.5 / static_cast<double>(clf.classes());
  return q;
}

Tensor sample_fitted_gaussian(const Tensor& rows, int64_t n, Generator& gen, double jitter, const std::string& what) {
  NoGradGuard ng;
  const models::FeatureStats fit = models::feature_stats(rows);
  const int64_t d = fit.mean.numel();
  Tensor cov = fit.cov;
  for (int64_t k = 0; k < d; ++k) cov.data<double>()[k * d + k] += jitter;
  return unsqueeze(fit.mean, 0) + mm(gen.normal({n, d}, 0, 1, DType::Float64), linalg::cholesky(cov, what), false, true);
}

double coverage(const Tensor& real, const Tensor& samples, int64_t k) {
  if (real.dim() != 2 || samples.dim() != 2 || real.size(1) != samples.size(1))
    throw Error("coverage: real features " + real.shape().str() + " and sample features " + samples.shape().str() +
                " must be [M, F] and [N, F] with one F");
  const int64_t M = real.size(0), N = samples.size(0);
  if (k < 1 || M <= k) throw Error("coverage: needs more than k = " + std::to_string(k) + " real points, got " + std::to_string(M));
  NoGradGuard ng;
  // squared distances by |a|^2 + |b|^2 - 2 a.b (float64), one matrix product for each pair of sets
  const Tensor r = real.to(DType::Float64).contiguous_copy(), f = samples.to(DType::Float64).contiguous_copy();
  auto squared_distances = [](const Tensor& a, const Tensor& b) {
    return sum(square(a), {1}, true) + transpose(sum(square(b), {1}, true), 0, 1) - 2.0 * mm(a, b, false, true);
  };
  const Tensor rr = squared_distances(r, r), rf = squared_distances(r, f);
  int64_t covered = 0;
  std::vector<double> row(static_cast<size_t>(M));
  for (int64_t j = 0; j < M; ++j) {
    for (int64_t i = 0; i < M; ++i) row[static_cast<size_t>(i)] = rr.at(j * M + i);
    // the k-th nearest real neighbour of x_j, x_j itself (distance 0) not counted: the (k+1)-th smallest
    std::nth_element(row.begin(), row.begin() + k, row.end());
    const double radius = row[static_cast<size_t>(k)];
    bool hit = false;
    for (int64_t i = 0; i < N && !hit; ++i) hit = rf.at(j * N + i) < radius;
    covered += hit;
  }
  return static_cast<double>(covered) / static_cast<double>(M);
}
double expected_coverage(int64_t real, int64_t samples, int64_t k) {
  if (k < 1 || real <= k || samples < 0)
    throw Error("expected_coverage: needs k >= 1 and more than k real points, got k = " + std::to_string(k) + ", " + std::to_string(real));
  double all_real = 1;
  for (int64_t i = 1; i <= k; ++i) all_real *= static_cast<double>(real - i) / static_cast<double>(real + samples - i);
  return 1 - all_real;
}

}  // namespace dgm::models
