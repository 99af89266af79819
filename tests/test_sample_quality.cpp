// tests/test_sample_quality.cpp — the Frechet distance against closed forms,
// the symmetric matrix square root, the domain classifier and its cache.
#include <cmath>
#include <filesystem>

#include "helpers.h"
#include "models/sample_quality.h"
#include "models/toolkit/linalg.h"

using namespace dgm;
using namespace dgm::models;
using namespace dgm::test;

namespace {
FeatureStats gaussian(const Tensor& mean, const Tensor& cov) {
  FeatureStats s;
  s.mean = mean;
  s.cov = cov;
  s.count = 1;
  return s;
}
Tensor diag(const std::vector<double>& d) {
  const auto n = static_cast<int64_t>(d.size());
  Tensor m = Tensor::zeros({n, n}, DType::Float64);
  for (int64_t i = 0; i < n; ++i) m.data<double>()[i * n + i] = d[static_cast<size_t>(i)];
  return m;
}
}  // namespace

TEST_CASE("coverage: a hand-counted case on a line, and its closed-form expectation by simulation", "[sample_quality]") {
  // real points 0, 1, ..., 9 on a line: with k = 1 every ball has radius 1 (open)
  std::vector<double> line;
  for (int i = 0; i < 10; ++i) line.push_back(i);
  const Tensor real = Tensor::from_vector(line, {10, 1});
  CHECK(coverage(real, Tensor::from_vector(std::vector<double>{0.5}, {1, 1}), 1) == Approx(0.2));       // inside the balls of 0 and 1
  CHECK(coverage(real, Tensor::from_vector(std::vector<double>{0.5, 5.0}, {2, 1}), 1) == Approx(0.3));  // + the ball of 5 (4 and 6 are 1 away: outside)
  CHECK(coverage(real, real, 1) == Approx(1.0));
  // k = 2 on the line: the radius of 0 is 2, of 1 to 8 is 1, of 9 is 2; a sample at 1.5 is inside the balls of 0, 1 and 2
  CHECK(coverage(real, Tensor::from_vector(std::vector<double>{1.5}, {1, 1}), 2) == Approx(0.3));
  // hand values of the expectation: M = N = 2, k = 1: 1 - 1/3; M = 3, N = 1, k = 2: 1 - (2/3)(1/2)
  CHECK(expected_coverage(2, 2, 1) == Approx(2.0 / 3));
  CHECK(expected_coverage(3, 1, 2) == Approx(2.0 / 3));
  // by simulation: both sets from one Gaussian in 8 dimensions, M = 60, N = 40, k = 5, 300 repetitions
  Generator gen(11);
  double total = 0, total_sq = 0;
  const int reps = 300;
  for (int r = 0; r < reps; ++r) {
    const double c = coverage(gen.normal({60, 8}, 0, 1, DType::Float64), gen.normal({40, 8}, 0, 1, DType::Float64), 5);
    total += c, total_sq += c * c;
  }
  const double m = total / reps, se = std::sqrt((total_sq / reps - m * m) / (reps - 1));
  INFO("simulated " << m << " +- " << se << ", closed form " << expected_coverage(60, 40, 5));
  CHECK(std::abs(m - expected_coverage(60, 40, 5)) <= 4 * se);
  // a model that drops half the modes: two clusters of real points, samples from one
  Tensor two = gen.normal({100, 2}, 0, 0.1, DType::Float64);
  for (int64_t i = 50; i < 100; ++i) two.data<double>()[i * 2] += 10;
  CHECK(coverage(two, gen.normal({100, 2}, 0, 0.1, DType::Float64), 5) <= 0.5);
  CHECK_THROWS_WITH(coverage(real, Tensor::zeros({3, 2}, DType::Float64)), Catch::Contains("[10, 1]"));
  CHECK_THROWS_WITH(coverage(slice(real, 0, 0, 5), real, 5), Catch::Contains("more than k = 5"));
}

TEST_CASE("sqrtm_psd: the square root squares back, and eigh reconstructs", "[sample_quality]") {
  const Tensor B = randn({5, 5}, 2);
  const Tensor A = mm(B, B, false, true) + diag({0.1, 0.1, 0.1, 0.1, 0.1});
  const Tensor R = linalg::sqrtm_psd(A);
  const Tensor RR = mm(R, R);
  for (int64_t i = 0; i < 25; ++i) CHECK(RR.at(i) == Approx(A.at(i)).margin(1e-10));
  const linalg::Eigh e = linalg::eigh(A);
  for (int64_t i = 1; i < 5; ++i) CHECK(e.values.at(i) >= e.values.at(i - 1));
  const Tensor back = mm(e.vectors * unsqueeze(e.values, 0), e.vectors, false, true);  // V diag(w) V^T
  for (int64_t i = 0; i < 25; ++i) CHECK(back.at(i) == Approx(A.at(i)).margin(1e-10));
}

TEST_CASE("frechet_distance: a common rotation of diagonal Gaussians gives the closed form", "[sample_quality]") {
  // For diagonal covariances FD = sum (m1 - m2)^2 + sum (sqrt(s1) - sqrt(s2))^2; rotating both
  // Gaussians by the same Q changes nothing, but makes the matrices full and not commuting-by-sight.
  const std::vector<double> m1 = {0.5, -1, 2, 0}, m2 = {0, 1, 2.5, -0.5}, s1 = {1, 4, 0.25, 2}, s2 = {2, 1, 1, 0.5};
  double closed = 0;
  for (size_t i = 0; i < 4; ++i) closed += std::pow(m1[i] - m2[i], 2) + std::pow(std::sqrt(s1[i]) - std::sqrt(s2[i]), 2);
  const Tensor Q = linalg::orthogonal_factor(randn({4, 4}, 7));
  auto rotate = [&](const std::vector<double>& m, const std::vector<double>& s) {
    return gaussian(squeeze(mm(Q, Tensor::from_vector(m, {4, 1})), 1), mm(mm(Q, diag(s)), Q, false, true));
  };
  const FeatureStats a = rotate(m1, s1), b = rotate(m2, s2);
  CHECK(frechet_distance(a, b) == Approx(closed).epsilon(1e-10));
  CHECK(frechet_distance(b, a) == Approx(closed).epsilon(1e-10));
  CHECK(std::abs(frechet_distance(a, a)) < 1e-10);
  // one dimension: the squared Wasserstein-2 distance (m1 - m2)^2 + (sd1 - sd2)^2
  CHECK(frechet_distance(gaussian(Tensor::full({1}, 1.0, DType::Float64), diag({9})),
                         gaussian(Tensor::full({1}, -1.0, DType::Float64), diag({1}))) == Approx(4 + 4).epsilon(1e-12));
}

TEST_CASE("feature_stats: the mean and the n-1 covariance of the rows", "[sample_quality]") {
  const Tensor f = Tensor::from_vector(std::vector<double>{1, 2, 3, 6, 5, 4}, {3, 2});
  const FeatureStats s = feature_stats(f);
  CHECK(s.mean.at(0) == Approx(3));
  CHECK(s.mean.at(1) == Approx(4));
  // x: 1, 3, 5 (var 4); y: 2, 6, 4 (var 4); cov = ((-2)(-2) + 0 + 2 * 0) / 2 = 2
  CHECK(s.cov.at(0) == Approx(4));
  CHECK(s.cov.at(3) == Approx(4));
  CHECK(s.cov.at(1) == Approx(2));
  CHECK(s.cov.at(2) == Approx(2));
  CHECK_THAT(error_of([&] { feature_stats(Tensor::zeros({1, 3})); }), Catch::Contains("[1, 3]"));
  CHECK_THAT(error_of([&] { frechet_distance(s, feature_stats(Tensor::zeros({4, 3}))); }), Catch::Contains("[2] vs [3]"));
}

TEST_CASE("domain classifier: learns the synthetic glyphs, the cache reloads it exactly, a cache that does not fit stops", "[sample_quality]") {
  const data::ImageSet train = data::synthetic_digits(data::Split::Train), test = data::synthetic_digits(data::Split::Test);
  Generator g(3);
  ImageClassifier clf(1, 8, 8, 10, g, 32);
  const std::string cache = temp_path("dgm_sample_quality", "clf.safetensors");
  std::filesystem::remove(cache);
  ClassifierOptions o;
  o.epochs = 15;
  o.validation = 200;
  o.progress = false;
  o.cache = cache;
  const ClassifierFit fit = fit_classifier(clf, train, test, g, o);
  CHECK_FALSE(fit.from_cache);
  CHECK(fit.test_accuracy >= 0.9);  // ten distinct glyphs: chance is 0.1
  CHECK(fit.test_accuracy == clf.accuracy(test));
  CHECK(clf.features_of(test.images).shape() == Shape{test.size(), 32});

  ImageClassifier again(1, 8, 8, 10, g, 32);
  const ClassifierFit loaded = fit_classifier(again, train, test, g, o);
  CHECK(loaded.from_cache);
  CHECK(loaded.test_accuracy == fit.test_accuracy);
  // the quality of real held-out images against the test set: every class present
  const SampleQuality q = sample_quality(clf, train.images, feature_stats(clf.features_of(test.images)));
  CHECK(q.classes_covered == 10);
  CHECK(q.count == train.size());
  // the images of one class only: nine classes missing
  std::vector<double> rows;
  for (int64_t i = 0; i < train.size(); ++i)
    if (train.labels.at(i) == 3) rows.push_back(static_cast<double>(i));
  const Tensor threes = index_select(train.images, 0, Tensor::from_vector(rows, {static_cast<int64_t>(rows.size())}).to(DType::Int64));
  const SampleQuality one = sample_quality(clf, threes, feature_stats(clf.features_of(test.images)));
  CHECK(one.classes_covered == 1);

  ImageClassifier other(1, 8, 8, 10, g, 16);  // another architecture: the cache does not fit
  o.epochs = 1;
  const std::string refused = error_of([&] { fit_classifier(other, train, test, g, o); });
  CHECK_THAT(refused, Catch::Contains("clf.safetensors") && Catch::Contains("[32,") && Catch::Contains("[16,") && Catch::Contains("--retrain"));
  o.retrain = true;  // --retrain: trained anew, the cache overwritten
  const ClassifierFit refit = fit_classifier(other, train, test, g, o);
  CHECK_FALSE(refit.from_cache);
  CHECK_THAT(refit.note, Catch::Contains("trained anew"));
  o.retrain = false;
  CHECK(fit_classifier(other, train, test, g, o).from_cache);
  CHECK_THAT(error_of([&] { ImageClassifier bad(1, 30, 30, 10, g); }), Catch::Contains("divisible by 4"));
}
