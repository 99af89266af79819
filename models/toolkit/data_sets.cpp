// dgm/models/toolkit/data_sets.cpp — the named data sets of the recipes (datasets.h's
// load_data_set): the readers' splits with their transforms, built in one place.
#include "models/toolkit/datasets.h"
#include "models/toolkit/transforms.h"

namespace dgm::data {

DataSet load_data_set(const std::string& name, const std::string& dir) {
  DataSet d;
  d.name = name;
  if (name == "digits_thresholded" || name == "fashion_thresholded") {  // one fixed binarization: pixel > 0.5
    const bool digits = name == "digits_thresholded";
    DataSet g = load_data_set(digits ? "digits17" : "fashion_dequantized", dir);
    g.name = name;
    for (Tensor* t : {&g.train, &g.validation, &g.test}) *t = binarize_threshold(*t, 0.5);
    g.train_eval = g.train;
    g.levels = 2;
    g.description = (digits ? (g.synthetic ? std::string("synthetic 8x8 glyphs") : std::string("8x8 digits")) + ", grey level > 8"
                            : std::string("Fashion-MNIST 28x28, pixel > 0.5")) +
                    " (one fixed binarization, as the intro's classifiers see them); train " + std::to_string(g.train.size(0)) +
                    " / validation " + std::to_string(g.validation.size(0)) + " / test " + std::to_string(g.test.size(0));
    return g;
  }
  if (name == "digits17" || name == "digits_binarized") {
    bool synthetic = false;
    const ImageSet tr = digits_or_synthetic(Split::Train, dir, &synthetic), va = digits_or_synthetic(Split::Validation, dir, &synthetic),
                   te = digits_or_synthetic(Split::Test, dir, &synthetic);
    d.synthetic = synthetic, d.levels = 17;
    d.train_labels = tr.labels, d.validation_labels = va.labels, d.test_labels = te.labels;
    const std::string what = synthetic ? "synthetic 8x8 glyphs (the digits are not installed)" : "8x8 digits";
    if (name == "digits17") {
      d.description = what + ", 17 grey levels; train 1,000 / validation 350 / test 447";
      d.train = tr.images, d.validation = va.images, d.test = te.images, d.train_eval = tr.images;
    } else {
      d.description = what + ", grey level / 16 as a Bernoulli probability: binarized afresh every batch, once for validation and test";
      d.train = tr.images, d.validation = binarize_static(va.images, 1), d.test = binarize_static(te.images, 0);
      d.train_eval = binarize_static(tr.images, 2);
      d.prepare = [](const Tensor& x, Generator& g) { return binarize_dynamic(x, g); };
    }
    return d;
  }
  if (name == "fashion_binarized" || name == "fashion_dequantized") {
    const ImageSet tr = fashion_mnist(Split::Train, dir), va = fashion_mnist(Split::Validation, dir), te = fashion_mnist(Split::Test, dir);
    d.train_labels = tr.labels, d.validation_labels = va.labels, d.test_labels = te.labels;
    if (name == "fashion_binarized") {
      d.description = "Fashion-MNIST 28x28, binarized: afresh every batch for training, once for validation and test; "
                      "train 59,000 / validation 1,000 / test 10,000";
      d.train = tr.images, d.validation = binarize_static(va.images, 1), d.test = binarize_static(te.images, 0);
      d.train_eval = binarize_static(tr.slice(0, 10000).images, 2);
      d.prepare = [](const Tensor& x, Generator& g) { return binarize_dynamic(x, g); };
      d.levels = 2;
    } else {
      d.description = "Fashion-MNIST 28x28, 256 levels (continuous models: uniform dequantization, the 1/256 scaling counted); "
                      "train 59,000 / validation 1,000 / test 10,000";
      d.train = tr.images, d.validation = va.images, d.test = te.images, d.train_eval = tr.images;
    }
    return d;
  }
  if (name == "words") {
    const WordSet tr = words(Split::Train, dir), va = words(Split::Validation, dir), te = words(Split::Test, dir);
    d.description = "the lowercase words of Debian's wamerican as letter tokens (0 ends a word); train " + std::to_string(tr.size()) +
                    " / validation " + std::to_string(va.size()) + " / test " + std::to_string(te.size());
    d.train = tr.tokens, d.validation = va.tokens, d.test = te.tokens, d.train_eval = tr.tokens;
    d.levels = 27;
    return d;
  }
  throw Error("load_data_set: no data set '" + name + "' (known: digits17, digits_binarized, digits_thresholded, fashion_binarized, fashion_dequantized, fashion_thresholded, words)");
}

}  // namespace dgm::data
