// dgm/models/sample_quality.h — how good are a model's samples? A Frechet
// distance on the features of a classifier of the same domain.
//
// The FID of Heusel et al. (2017) fits a Gaussian to the Inception network's
// features of real images and one to those of samples, and reports
//   FD = ||mu_1 - mu_2||^2 + tr(S_1 + S_2 - 2 (S_1^1/2 S_2 S_1^1/2)^1/2),
// the squared Wasserstein-2 distance between the two Gaussians. There is no
// Inception network here, so the features come from a small CNN trained with
// the engine on the same data set: "FID with a domain classifier" (call it
// fid_domain; its numbers are not comparable with published FIDs, only with
// each other on the same classifier). The classifier's predictions give a
// second measure: the share of samples it puts in each class (a model that
// drops classes shows it there).
//
// Use: any model's samples, e.g.
//   ImageClassifier clf(1, 28, 28, 10, gen);
//   ClassifierFit fit = fit_classifier(clf, train, test, gen, {.cache = "runs/x/fashion_classifier.safetensors"});
//   FeatureStats real = feature_stats(clf.features_of(test.images));
//   SampleQuality q = sample_quality(clf, samples, real);      // q.fid_domain, q.classes_covered
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "autograd/nn.h"
#include "models/toolkit/datasets.h"

namespace dgm::models {

// conv3x3(C -> 32) ReLU, avg-pool 2, conv3x3(32 -> 64) ReLU, avg-pool 2,
// Linear(64 H/4 W/4 -> features) ReLU = the features, Linear(features -> classes) = the logits.
class ImageClassifier : public nn::Module {
 public:
  ImageClassifier(int64_t channels, int64_t height, int64_t width, int64_t classes, Generator& gen, int64_t features = 128);
  Tensor forward(const Tensor& x) override;  // logits [N, classes]
  Tensor features(const Tensor& x);          // the penultimate layer [N, features]
  // features / predicted class of many images, in no-grad chunks
  Tensor features_of(const Tensor& images, int64_t chunk = 500);
  Tensor predict(const Tensor& images, int64_t chunk = 500);  // int64 [N]
  Tensor classify_features(const Tensor& features);            // the predicted class from features_of's output
  double accuracy(const data::ImageSet& set);
  int64_t classes() const { return classes_; }
  int64_t channels() const { return channels_; }
  int64_t height() const { return height_; }
  int64_t width() const { return width_; }
  int64_t feature_count() const { return features_; }

 private:
  int64_t channels_, height_, width_, classes_, features_;
  std::shared_ptr<nn::Conv2d> conv1_, conv2_;
  std::shared_ptr<nn::Linear> fc_, out_;
};

struct ClassifierOptions {
  int epochs = 5;             // Fashion-MNIST: 90.6% after 4 (measured), so 5
  int64_t batch_size = 64;
  double lr = 2e-3;
  int64_t validation = 5000;  // the last images of `train` held out to pick the best epoch
  double max_seconds = 0;     // 0: no limit
  std::string cache;          // a checkpoint: loaded when it exists, written after training ("": none)
  bool retrain = false;       // train even when the cache exists (and overwrite it)
  bool progress = true;
};
struct ClassifierFit {
  double test_accuracy = 0, seconds = 0;
  bool from_cache = false;
  std::string note;  // why a cache was not used, if it was not
};
// Trains with cross-entropy (Adam), or loads `options.cache` when it exists. A cache that
// does not hold this architecture (or cannot be read) is an error naming the file and the
// tensors that differ: it is never silently replaced (retrain = true trains anew).
ClassifierFit fit_classifier(ImageClassifier& classifier, const data::ImageSet& train, const data::ImageSet& test,
                             Generator& gen, const ClassifierOptions& options);

// The Gaussian fitted to features [N, F]: mean [F], covariance [F, F] (n - 1 normalised), float64.
struct FeatureStats {
  Tensor mean, cov;
  int64_t count = 0;
};
FeatureStats feature_stats(const Tensor& features);
// n draws from the Gaussian with the rows' mean and covariance (all that a single Gaussian can
// capture: the reference a sampler must beat): mean + L z, L L^T = cov + jitter I. float64 [n, D].
// `what` names the covariance in the error if it is not positive definite.
Tensor sample_fitted_gaussian(const Tensor& rows, int64_t n, Generator& gen, double jitter, const std::string& what);
// The Frechet distance between two Gaussians (float64; the matrix square root by
// symmetric eigen-decompositions, exact for positive semi-definite covariances).
double frechet_distance(const FeatureStats& a, const FeatureStats& b);

struct SampleQuality {
  double fid_domain = 0;             // Frechet distance to `reference` on the classifier's features
  std::vector<double> class_shares;  // share of the samples predicted as each class
  int64_t classes_covered = 0;       // classes with at least half their fair share (0.5 / classes)
  int64_t count = 0;
};
SampleQuality sample_quality(ImageClassifier& classifier, const Tensor& images, const FeatureStats& reference);

// Coverage (Naeem et al. 2020, "Reliable fidelity and diversity metrics"): the share of the real
// points whose ball out to their k-th nearest real neighbour holds at least one sample,
//   coverage = (1/M) sum_j 1[ exists i: |y_i - x_j| < NND_k(x_j) ],
// on features, real [M, F] and samples [N, F]. A model that drops modes leaves the balls there
// empty: it reads below the same count of other real points (whose expected coverage for
// M = N and k = 5 is 1 - 1/2^5 = 0.969). Needs M > k.
double coverage(const Tensor& real_features, const Tensor& sample_features, int64_t k = 5);
// Its expectation when the samples come from the real points' own distribution (continuous, all
// points independent), for M real points and N samples: x_j's ball misses every sample iff its k
// nearest among the other M - 1 real points and the N samples are all real, so
//   E[coverage] = 1 - prod_{i=1..k} (M - i) / (M + N - i).
double expected_coverage(int64_t real, int64_t samples, int64_t k = 5);

}  // namespace dgm::models
