// Every chapter at once: the reference solutions get full marks in this process, and
// each README lists exactly what its grader grades (names, files, points per check).
#include <filesystem>

#include "homework/autoregressive/exercises.h"
#include "homework/conditional/exercises.h"
#include "homework/diffusion/exercises.h"
#include "homework/em/exercises.h"
#include "homework/engine/exercises.h"
#include "homework/flows/exercises.h"
#include "homework/gan/exercises.h"
#include "homework/intro/exercises.h"
#include "homework/likelihood/exercises.h"
#include "homework/mcmc/exercises.h"
#include "homework/sequence/exercises.h"
#include "homework/vae/exercises.h"
#include "tests/helpers.h"
#include "tests/homework/helpers.h"

namespace {

const std::filesystem::path kRoot = std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();

void check_chapter(const std::string& chapter, const std::vector<hw::Exercise>& exercises) {
  INFO("chapter " << chapter);
  const std::string readme = dgm::test::read_text(kRoot / "homework" / chapter / "README.md");
  const std::string begin = "<!-- exercises: written by scripts/homework_readmes.sh -->\n", end = "<!-- end of exercises -->";
  const auto b = readme.find(begin), e = readme.find(end);
  REQUIRE(b != std::string::npos);
  REQUIRE(e != std::string::npos);
  INFO("homework/" << chapter << "/README.md is out of date: run scripts/homework_readmes.sh");
  REQUIRE(readme.substr(b + begin.size(), e - b - begin.size()) == hw::exercise_list_markdown(exercises));
  REQUIRE(readme.find("make grade CHAPTER=" + chapter) != std::string::npos);
  for (const auto& ex : exercises) {
    INFO(ex.file);
    REQUIRE(std::filesystem::exists(kRoot / ex.file));
  }
}

}  // namespace

static const std::vector<std::pair<std::string, std::vector<hw::Exercise>>>& chapters() {
  static const std::vector<std::pair<std::string, std::vector<hw::Exercise>>> all = {
      {"intro", hw::intro::exercises(hw::intro::linked())},
      {"conditional", hw::conditional::exercises(hw::conditional::linked())},
      {"engine", hw::engine::exercises(hw::engine::linked())},
      {"autoregressive", hw::autoregressive::exercises(hw::autoregressive::linked())},
      {"vae", hw::vae::exercises(hw::vae::linked())},
      {"em", hw::em::exercises(hw::em::linked())},
      {"flows", hw::flows::exercises(hw::flows::linked())},
      {"gan", hw::gan::exercises(hw::gan::linked())},
      {"diffusion", hw::diffusion::exercises(hw::diffusion::linked())},
      {"likelihood", hw::likelihood::exercises(hw::likelihood::linked())},
      {"mcmc", hw::mcmc::exercises(hw::mcmc::linked())},
      {"sequence", hw::sequence::exercises(hw::sequence::linked())},
  };
  return all;
}

TEST_CASE("homework: the reference solutions get full marks", "[homework]") {
  for (const auto& [chapter, exercises] : chapters()) {
    INFO("chapter " << chapter);
    for (const auto& ex : exercises) hw_test::require_full_marks(hw::grade_in_process(ex));
  }
}

TEST_CASE("homework: each chapter's README lists its exercises, files and points as the grader grades them", "[homework]") {
  for (const auto& [chapter, exercises] : chapters()) check_chapter(chapter, exercises);
}

TEST_CASE("homework: every exercise has its reference solution's time recorded (its time limit is 20x that)", "[homework]") {
  for (const auto& [chapter, exercises] : chapters()) {
    const auto recorded = hw::reference_seconds(chapter);
    for (const auto& ex : exercises) {
      INFO("chapter " << chapter << ", exercise " << ex.name
                      << ": missing from homework/reference_seconds.json (scripts/homework_times.sh writes it)");
      REQUIRE(recorded.count(ex.name) == 1);
      REQUIRE(recorded.at(ex.name) > 0);
    }
  }
}
