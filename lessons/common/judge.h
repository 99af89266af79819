// dgm/lessons/common/judge.h — the domain classifier that a lesson's sample-quality figures are
// measured with (fid_domain, the class accuracy of samples; docs/chapters/diffusion.md, section 9):
// the small CNN of models/sample_quality.h, trained once and cached in the lesson's folder.
#pragma once

#include <memory>
#include <string>

#include "lessons/common/lesson.h"
#include "models/sample_quality.h"

namespace dgm::lesson {

struct Judge {
  std::shared_ptr<models::ImageClassifier> classifier;
  models::ClassifierFit fit;
};

// The CNN for `train`'s one-channel images (10 classes), its weights drawn from `init`; loaded
// from <out>/<file> when that exists (--retrain: trained anew), else trained with `options` on
// `gen` and saved there (options.cache and options.retrain are set here). Prints what it did.
Judge domain_classifier(Lesson& L, const data::ImageSet& train, const data::ImageSet& test, const std::string& file,
                        Generator& init, Generator& gen, models::ClassifierOptions options = {});

}  // namespace dgm::lesson
