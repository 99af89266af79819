// dgm/lessons/common/judge.cpp — see judge.h.
#include "lessons/common/judge.h"

#include <iomanip>
#include <iostream>

namespace dgm::lesson {

Judge domain_classifier(Lesson& L, const data::ImageSet& train, const data::ImageSet& test, const std::string& file,
                        Generator& init, Generator& gen, models::ClassifierOptions options) {
  Judge j;
  j.classifier = std::make_shared<models::ImageClassifier>(1, train.images.size(2), train.images.size(3), 10, init);
  options.cache = L.path(file);
  options.retrain = L.options().retrain;
  j.fit = models::fit_classifier(*j.classifier, train, test, gen, options);
  if (!j.fit.note.empty()) std::cout << "   " << j.fit.note << "\n";
  std::cout << std::fixed << std::setprecision(4) << "   domain classifier (conv-conv-fc CNN, " << j.classifier->num_parameters()
            << " parameters): test accuracy " << j.fit.test_accuracy
            << (j.fit.from_cache ? " (loaded from " + options.cache + ")"
                                 : " (trained " + std::to_string(static_cast<int>(j.fit.seconds)) + " s, saved to " + options.cache + ")")
            << "\n";
  return j;
}

}  // namespace dgm::lesson
