// dgm/homework/grader/grader.h — the autograder every chapter's homework uses.
//
// An Exercise is a function a student writes (in homework/<chapter>/<name>.cpp)
// and the checks that grade it. A Check runs the student's code on fixed,
// seeded inputs and compares what it gives with an independent computation (a
// closed form, finite differences, quadrature, the engine's own reference
// implementation); an Expect records the first comparison that failed, with
// the expected and actual numbers and a hint. An exercise earns its points in
// proportion to the weight of the checks it passes.
//
// run_chapter() grades each exercise in its own child process with a time
// limit, so a crash or an endless loop in one exercise is reported as such and
// the others are still graded. Same code, same score: the inputs are seeded,
// the engine runs on one thread, nothing is read from the network.
#pragma once

#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace hw {

using dgm::Tensor;

// ----------------------------------------------------------------- the stub's error
// What an untouched stub throws: "not implemented yet: <exercise> (homework/<chapter>/<file>)".
struct NotImplemented : std::logic_error {
  NotImplemented(const std::string& exercise, const std::string& file);
  std::string exercise, file;
};
// The body of a stub. Replace the whole line with your code.
#define DGM_TODO(exercise) throw ::hw::NotImplemented(exercise, __FILE__)

// ----------------------------------------------------------------- comparing
// Collects the comparisons of one check; the first failure is what the student sees.
class Expect {
 public:
  // |actual - expected| <= tol (NaN and Inf fail)
  Expect& near(const std::string& what, double expected, double actual, double tol, const std::string& hint);
  // Same shape, then every element within tol; a failure names the worst element.
  Expect& tensors_near(const std::string& what, const Tensor& expected, const Tensor& actual, double tol,
                       const std::string& hint);
  // The shape alone.
  Expect& shape_is(const std::string& what, const Tensor& actual, const dgm::Shape& shape, const std::string& hint);
  Expect& that(bool ok, const std::string& detail, const std::string& hint);
  // Prefixes the details of later failures (e.g. "seed 3: ").
  void set_context(const std::string& context) { context_ = context; }

  bool ok() const { return ok_; }
  const std::string& detail() const { return detail_; }
  const std::string& hint() const { return hint_; }

 private:
  void fail(const std::string& detail, const std::string& hint);
  bool ok_ = true;
  std::string detail_, hint_, context_;
};

// ----------------------------------------------------------------- exercises
struct Check {
  std::string what;                     // what it shows when it passes, e.g. "KL is 0 when q = p"
  double weight = 1;                    // its share of the exercise's points
  std::function<void(Expect&)> run;     // calls the student's code and compares
  bool essential = false;               // see below
};
// An essential check guards a property the chapter's model needs to train or sample right (the
// formula's value, a gradient that must reach the parameters, stability where the chapter's
// data take it, an inverse that sampling runs). An exercise with a failed essential check earns
// at most half its points, whatever else passes: a mistake that would break the chapter's model
// loses at least half (docs/homework.md). Written after the check's function: {..., essential}.
inline constexpr bool essential = true;

struct Exercise {
  std::string name;                     // "gaussian_kl": the function to write
  std::string file;                     // "homework/vae/gaussian_kl.cpp": where to write it
  double points = 10;
  std::vector<Check> checks;
  int stub_todos = 1;                   // DGM_TODO("<name>") lines in the untouched stub (one per function)
};

enum class Status { Pass, Fail, NotImplemented, Threw, Crashed, TimedOut };
const char* status_name(Status s);  // "pass", "fail", "not implemented", "threw", "crashed", "timed out"

struct CheckResult {
  std::string what;
  Status status = Status::Pass;
  std::string detail, hint;
};

struct ExerciseResult {
  std::string name, file;
  double earned = 0, points = 0;
  bool capped = false;              // an essential check failed: at most half the points
  double seconds = 0;               // how long its checks ran (grade_isolated: wall time of the child)
  double limit_seconds = 0;         // the time limit it ran under (grade_isolated)
  std::vector<CheckResult> checks;
  bool full_marks() const { return earned >= points - 1e-9; }
  bool not_implemented() const;     // every check said "not implemented"
  const CheckResult* first_failure() const;
};

// Runs the checks in this process (tests, debuggers).
ExerciseResult grade_in_process(const Exercise& exercise);
// Runs them in a child process that may take at most `timeout_seconds`:
// a crash or a timeout fails the checks it had not finished.
ExerciseResult grade_isolated(const Exercise& exercise, double timeout_seconds);

// The grader's main(): flags, a score table, an exit status.
//   grade_<chapter> [--only NAME] [--timeout S] [--verbose] [--json FILE] [--table FILE]
//                   [--in-process] [--list] [--strict] [--stubs-fail-cleanly SOURCE_DIR]
// Exit 0 when the exercises were graded, whatever the score (a partial score is not an
// error); 2 when nothing could be graded. With --strict (CI), 1 unless full marks.
// With --stubs-fail-cleanly, exit 0 when every exercise whose stub is untouched (all
// its DGM_TODO lines there) fails with "not implemented" and nothing else; a stub a
// student has started on is not checked.
//
// Each exercise runs under a time limit of 20 times its reference solution's time, at
// least 2 s: the times are measured by scripts/homework_times.sh into
// homework/reference_seconds.json (an exercise missing there gets 60 s); --timeout S
// sets one limit for all.
int run_chapter(const std::string& chapter, const std::vector<Exercise>& exercises, int argc, char** argv);

// The exercises, their files and their checks with points, as Markdown: the part of
// homework/<chapter>/README.md between its "exercises" markers (grade_<chapter> --list
// prints it; scripts/homework_readmes.sh writes it; a test compares).
std::string exercise_list_markdown(const std::vector<Exercise>& exercises);

// The time limit of an exercise: max(2, 20 x its reference time), or 60 s when none is recorded.
double time_limit(double reference_seconds);
// The recorded reference times of a chapter's exercises (name -> seconds), from
// homework/reference_seconds.json in the source tree; empty when it cannot be read.
std::map<std::string, double> reference_seconds(const std::string& chapter);

// ----------------------------------------------------------------- the library's own answer
// The engine and the models already implement most exercises (dgm::sum_to, models::pixelcnn_mask,
// dist::Normal::kl_to_standard ...): calling them would pass every check without writing the math.
// add_library_check(exercise, {"dgm::sum_to"}) appends an essential check of weight 0 that reads
// the student's file (comments and strings left out) and fails when it names one of these: it
// costs no points when it passes and caps the exercise at half when it fails.
void add_library_check(Exercise& exercise, const std::vector<std::string>& library_twins);
// The first of `library_twins` the C++ text names (a qualified name matches with any spacing
// around its ::, and also as the target of a using-declaration); empty if none.
std::string first_library_twin(const std::string& cpp_text, const std::vector<std::string>& library_twins);
// Which files the library checks read: the stubs (grade_<chapter>, the default) or the
// reference solutions (grade_<chapter>_solution sets this before run_chapter).
void grade_reference_solutions(bool yes);

// ----------------------------------------------------------------- helpers for graders
std::string fmt(double v);                 // 6 significant digits, "nan"/"inf" spelled out
double max_abs(const Tensor& t);           // largest |element| (NaN if any element is NaN)
bool all_finite(const Tensor& t);

}  // namespace hw
