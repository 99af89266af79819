// dgm/homework/grader/grader.cpp — checks, isolation, the score table.
#include "homework/grader/grader.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <regex>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "autograd/graph.h"
#include "autograd/runtime.h"

namespace hw {

namespace {
// "…/homework/vae/elbo.cpp" -> "homework/vae/elbo.cpp"
std::string repo_relative(const std::string& path) {
  const auto at = path.rfind("homework/");
  return at == std::string::npos ? path : path.substr(at);
}
}  // namespace

NotImplemented::NotImplemented(const std::string& ex, const std::string& f)
    : std::logic_error("not implemented yet: " + ex + " (" + repo_relative(f) + ")"),
      exercise(ex), file(repo_relative(f)) {}

// ----------------------------------------------------------------- Expect
std::string fmt(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::ostringstream s;
  s.precision(6);
  s << v;
  return s.str();
}

bool all_finite(const Tensor& t) {
  for (double v : t.to_vector())
    if (!std::isfinite(v)) return false;
  return true;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to_vector()) {
    if (std::isnan(v)) return v;
    m = std::max(m, std::abs(v));
  }
  return m;
}

void Expect::fail(const std::string& detail, const std::string& hint) {
  if (!ok_) return;  // the first failure is the one shown
  ok_ = false;
  detail_ = context_ + detail;
  hint_ = hint;
}

Expect& Expect::that(bool ok, const std::string& detail, const std::string& hint) {
  if (!ok) fail(detail, hint);
  return *this;
}

Expect& Expect::near(const std::string& what, double expected, double actual, double tol, const std::string& hint) {
  const double diff = std::abs(actual - expected);
  if (!(diff <= tol))  // NaN fails
    fail(what + ": expected " + fmt(expected) + ", got " + fmt(actual) + " (|diff| " + fmt(diff) + " > tol " +
             fmt(tol) + ")",
         hint);
  return *this;
}

Expect& Expect::shape_is(const std::string& what, const Tensor& actual, const dgm::Shape& shape,
                         const std::string& hint) {
  if (!actual.defined()) fail(what + ": expected a tensor of shape " + shape.str() + ", got an undefined Tensor()", hint);
  else if (actual.shape() != shape)
    fail(what + ": expected shape " + shape.str() + ", got " + actual.shape().str(), hint);
  return *this;
}

Expect& Expect::tensors_near(const std::string& what, const Tensor& expected, const Tensor& actual, double tol,
                             const std::string& hint) {
  shape_is(what, actual, expected.shape(), hint);
  if (!ok_) return *this;
  const std::vector<double> e = expected.to_vector(), a = actual.to_vector();
  size_t worst = 0;
  double worst_diff = -1;
  for (size_t i = 0; i < e.size(); ++i) {
    const double d = std::abs(a[i] - e[i]);
    if (std::isnan(d)) { worst = i; worst_diff = d; break; }
    if (d > worst_diff) { worst = i; worst_diff = d; }
  }
  if (!e.empty() && !(worst_diff <= tol))
    fail(what + ": element " + std::to_string(worst) + " of " + expected.shape().str() + ": expected " +
             fmt(e[worst]) + ", got " + fmt(a[worst]) + " (|diff| " + fmt(worst_diff) + " > tol " + fmt(tol) + ")",
         hint);
  return *this;
}

// ----------------------------------------------------------------- statuses
const char* status_name(Status s) {
  switch (s) {
    case Status::Pass: return "pass";
    case Status::Fail: return "fail";
    case Status::NotImplemented: return "not implemented";
    case Status::Threw: return "threw";
    case Status::Crashed: return "crashed";
    case Status::TimedOut: return "timed out";
  }
  return "?";
}

bool ExerciseResult::not_implemented() const {
  for (const auto& c : checks)
    if (c.status != Status::NotImplemented) return false;
  return !checks.empty();
}

const CheckResult* ExerciseResult::first_failure() const {
  for (const auto& c : checks)
    if (c.status != Status::Pass) return &c;
  return nullptr;
}

namespace {

CheckResult run_check(const Check& check) {
  CheckResult r{check.what, Status::Pass, "", ""};
  try {
    dgm::GradModeGuard grad_on(true);  // a check starts from the engine's defaults
    Expect e;
    check.run(e);
    if (!e.ok()) { r.status = Status::Fail; r.detail = e.detail(); r.hint = e.hint(); }
  } catch (const NotImplemented& ni) {
    r.status = Status::NotImplemented;
    r.detail = ni.what();
    r.hint = "write the function in " + ni.file + " (its comment gives the math), then grade again";
  } catch (const std::exception& ex) {
    r.status = Status::Threw;
    r.detail = std::string("your code threw: ") + ex.what();
    r.hint = "an error from the engine names the op and the shapes it got";
  } catch (...) {
    r.status = Status::Threw;
    r.detail = "your code threw something that is not a std::exception";
  }
  return r;
}

// The points of the checks passed, in proportion to their weights; at most half of the
// exercise's points when an essential check did not pass (`capped`).
double score(const Exercise& ex, const std::vector<CheckResult>& results, bool& capped) {
  double total = 0, passed = 0;
  capped = false;
  for (size_t i = 0; i < ex.checks.size(); ++i) {
    const bool pass = i < results.size() && results[i].status == Status::Pass;
    total += ex.checks[i].weight;
    if (pass) passed += ex.checks[i].weight;
    if (!pass && ex.checks[i].essential) capped = true;
  }
  const double earned = total > 0 ? ex.points * passed / total : 0.0;
  return capped ? std::min(earned, ex.points / 2) : earned;
}

ExerciseResult finish(const Exercise& ex, std::vector<CheckResult> results) {
  ExerciseResult r;
  r.name = ex.name;
  r.file = ex.file;
  r.points = ex.points;
  r.earned = score(ex, results, r.capped);
  r.checks = std::move(results);
  return r;
}

// One line per check through the pipe: status, then the escaped detail and hint.
std::string escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '\\') o += "\\\\";
    else if (c == '\n') o += "\\n";
    else if (c == '\t') o += "\\t";
    else o += c;
  }
  return o;
}
std::string unescape(const std::string& s) {
  std::string o;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      const char n = s[++i];
      o += n == 'n' ? '\n' : n == 't' ? '\t' : n;
    } else {
      o += s[i];
    }
  }
  return o;
}
void write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    const ssize_t w = ::write(fd, s.data() + off, s.size() - off);
    if (w <= 0) return;
    off += static_cast<size_t>(w);
  }
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// A whole file as text; false when it cannot be read.
bool read_text(const std::string& path, std::string& text) {
  std::ifstream in(path);
  if (!in) return false;
  std::stringstream s;
  s << in.rdbuf();
  text = s.str();
  return true;
}

// The line an untouched stub holds for each function of the exercise.
std::string todo_line(const std::string& exercise) { return "DGM_TODO(\"" + exercise + "\")"; }

}  // namespace

ExerciseResult grade_in_process(const Exercise& ex) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<CheckResult> results;
  for (const auto& c : ex.checks) results.push_back(run_check(c));
  ExerciseResult r = finish(ex, std::move(results));
  r.seconds = seconds_since(start);
  return r;
}

ExerciseResult grade_isolated(const Exercise& ex, double timeout_seconds) {
  const auto start = std::chrono::steady_clock::now();
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("grader: pipe() failed: " + std::string(std::strerror(errno)));
  std::cout.flush();
  std::cerr.flush();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("grader: fork() failed: " + std::string(std::strerror(errno)));
  if (pid == 0) {  // the child: run the checks, report each as it finishes
    ::close(fds[0]);
    // a crash must end this process with its signal (not in a handler the parent installed, like Catch2's)
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) ::signal(sig, SIG_DFL);
    for (const auto& c : ex.checks) {
      const CheckResult r = run_check(c);
      write_all(fds[1], std::to_string(static_cast<int>(r.status)) + "\t" + escape(r.detail) + "\t" +
                            escape(r.hint) + "\n");
    }
    std::cout.flush();
    ::_exit(0);  // no atexit handlers or static destructors of the parent's state
  }
  ::close(fds[1]);
  std::string buffer;
  std::vector<CheckResult> results;
  bool timed_out = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) { timed_out = true; break; }
    pollfd p{fds[0], POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    char chunk[4096];
    const ssize_t n = ::read(fds[0], chunk, sizeof chunk);
    if (n <= 0) break;  // EOF: the child is done (or died)
    buffer.append(chunk, static_cast<size_t>(n));
    size_t nl;
    while ((nl = buffer.find('\n')) != std::string::npos) {
      const std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      const size_t t1 = line.find('\t'), t2 = line.find('\t', t1 + 1);
      CheckResult r;
      r.what = ex.checks[results.size()].what;
      r.status = static_cast<Status>(std::stoi(line.substr(0, t1)));
      r.detail = unescape(line.substr(t1 + 1, t2 - t1 - 1));
      r.hint = unescape(line.substr(t2 + 1));
      results.push_back(r);
    }
  }
  ::close(fds[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int wstatus = 0;
  ::waitpid(pid, &wstatus, 0);
  if (results.size() < ex.checks.size()) {
    CheckResult stopped;
    stopped.what = ex.checks[results.size()].what;
    if (timed_out) {
      stopped.status = Status::TimedOut;
      stopped.detail = "still running after the limit of " + fmt(timeout_seconds) + " s; it was stopped";
      stopped.hint = "look for a loop that never ends (or raise the limit with --timeout)";
    } else {
      stopped.status = Status::Crashed;
      stopped.detail = WIFSIGNALED(wstatus)
                           ? std::string("your code crashed: signal ") + std::to_string(WTERMSIG(wstatus)) + " (" +
                                 strsignal(WTERMSIG(wstatus)) + ")"
                           : "your code ended the process (exit status " + std::to_string(WEXITSTATUS(wstatus)) + ")";
      stopped.hint = "run the grader with --in-process under gdb to see where; a raw data<T>() index out of range is the usual cause";
    }
    results.push_back(stopped);
    while (results.size() < ex.checks.size()) {
      CheckResult skipped{ex.checks[results.size()].what, stopped.status, "not run (an earlier check " +
                                                                            std::string(status_name(stopped.status)) + ")", ""};
      results.push_back(skipped);
    }
  }
  ExerciseResult r = finish(ex, std::move(results));
  r.seconds = seconds_since(start);
  r.limit_seconds = timeout_seconds;
  return r;
}

namespace {
bool g_reference_solutions = false;

// The text without comments, string and character literals (each replaced by a space).
std::string code_only(const std::string& t) {
  std::string o;
  for (size_t i = 0; i < t.size();) {
    if (t.compare(i, 2, "//") == 0) {
      while (i < t.size() && t[i] != '\n') ++i;
    } else if (t.compare(i, 2, "/*") == 0) {
      const size_t end = t.find("*/", i + 2);
      i = end == std::string::npos ? t.size() : end + 2;
      o += ' ';
    } else if (t[i] == '"' || t[i] == '\'') {
      const char quote = t[i++];
      while (i < t.size() && t[i] != quote) i += t[i] == '\\' ? 2 : 1;
      ++i;
      o += ' ';
    } else {
      o += t[i++];
    }
  }
  return o;
}
}  // namespace

void grade_reference_solutions(bool yes) { g_reference_solutions = yes; }

std::string first_library_twin(const std::string& cpp_text, const std::vector<std::string>& library_twins) {
  const std::string code = code_only(cpp_text);
  for (const auto& twin : library_twins) {
    std::string pattern = "(^|[^\\w])";  // not the tail of a longer name (a scope before it is fine)
    size_t start = 0;
    for (size_t at; (at = twin.find("::", start)) != std::string::npos; start = at + 2)
      pattern += twin.substr(start, at - start) + "\\s*::\\s*";
    pattern += twin.substr(start) + "\\b";
    if (std::regex_search(code, std::regex(pattern))) return twin;
  }
  return "";
}

void add_library_check(Exercise& ex, const std::vector<std::string>& library_twins) {
  std::string names;
  for (const auto& t : library_twins) names += (names.empty() ? "" : ", ") + t;
  const std::string file = ex.file, name = ex.name;
  // first in the list: when it fails, it is the failure the table shows
  ex.checks.insert(ex.checks.begin(), Check{"written from the math: it does not call the library's own " + names, 0, [file, name, library_twins](Expect& e) {
                         std::string path = std::string(DGM_SOURCE_DIR) + "/" + file;
                         if (g_reference_solutions) {  // homework/<chapter>/solution/<name>.cpp
                           const size_t slash = file.rfind('/');
                           path = std::string(DGM_SOURCE_DIR) + "/" + file.substr(0, slash) + "/solution" + file.substr(slash);
                         }
                         std::string text;
                         if (!read_text(path, text)) {
                           e.that(false, "cannot read " + path, "the grader reads your file to look for library calls");
                           return;
                         }
                         if (text.find(todo_line(name)) != std::string::npos) throw NotImplemented(name, file);
                         const std::string twin = first_library_twin(text, library_twins);
                         e.that(twin.empty(), file + " calls " + twin + ", the library's own implementation of this exercise",
                                "write it from the math in the comment above the function, with the engine's ops");
                       }, essential});
}

double time_limit(double reference_seconds) {
  return reference_seconds > 0 ? std::max(2.0, 20 * reference_seconds) : 60.0;
}

std::map<std::string, double> reference_seconds(const std::string& chapter) {
  std::map<std::string, double> out;
  const std::string path = std::string(DGM_SOURCE_DIR) + "/homework/reference_seconds.json";
  std::string text;
  if (!read_text(path, text)) {
    std::cerr << "grader: cannot read " << path << "; every exercise gets a 60 s limit (scripts/homework_times.sh writes it)\n";
    return out;
  }
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    if (j.contains(chapter))
      for (const auto& [name, seconds] : j.at(chapter).items()) out[name] = seconds.get<double>();
  } catch (const std::exception& e) {
    std::cerr << "grader: " << path << " is not valid (" << e.what() << "); every exercise gets a 60 s limit\n";
    return {};
  }
  return out;
}

// ----------------------------------------------------------------- the list
std::string exercise_list_markdown(const std::vector<Exercise>& exercises) {
  auto cell = [](const std::string& text) {  // a '|' would end the Markdown cell
    std::string o;
    for (char c : text) o += c == '|' ? std::string("\\|") : std::string(1, c);
    return o;
  };
  std::ostringstream out;
  bool any_essential = false;
  for (const auto& ex : exercises)
    for (const auto& c : ex.checks) any_essential = any_essential || c.essential;
  if (any_essential)
    out << "A check marked **(essential)** guards what the chapter's model needs to train or sample right: if it "
           "fails, the exercise earns at most half its points.\n\n";
  for (const auto& ex : exercises) {
    double total = 0;
    for (const auto& c : ex.checks) total += c.weight;
    out << "### `" << ex.name << "` (" << fmt(ex.points) << " points): `" << ex.file << "`\n\n";
    out << "| points | check |\n|---:|---|\n";
    for (const auto& c : ex.checks)
      out << "| " << fmt(ex.points * c.weight / total) << " | " << cell(c.what) << (c.essential ? " **(essential)**" : "") << " |\n";
    out << "\n";
  }
  return out.str();
}

// ----------------------------------------------------------------- the table
namespace {

std::string points(double earned, double possible) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(1);
  s << earned << " / " << possible;
  return s.str();
}

std::string pad(std::string s, size_t width) {
  if (s.size() < width) s.resize(width, ' ');
  return s;
}

std::string indent(const std::string& text, const std::string& prefix) {
  std::string o;
  std::istringstream in(text);
  std::string line;
  bool first = true;
  while (std::getline(in, line)) {
    o += (first ? "" : "\n" + prefix) + line;
    first = false;
  }
  return o;
}

void print_table(std::ostream& out, const std::string& chapter, const std::vector<ExerciseResult>& results,
                 bool verbose, const std::string& how) {
  double earned = 0, possible = 0;
  size_t width = 8;
  for (const auto& r : results) width = std::max(width, r.name.size());
  out << "homework " << chapter << ": " << results.size() << " exercise" << (results.size() == 1 ? "" : "s") << " (" << how
      << ")\n\n";
  out << "  " << pad("exercise", width) << "  " << pad("points", 11) << "  result\n";
  for (const auto& r : results) {
    earned += r.earned;
    possible += r.points;
    size_t passed = 0;
    for (const auto& c : r.checks) passed += c.status == Status::Pass;
    std::string summary;
    if (r.full_marks()) summary = "all " + std::to_string(r.checks.size()) + " checks pass";
    else if (r.not_implemented()) summary = "not implemented yet: write it in " + r.file;
    else summary = std::to_string(passed) + " of " + std::to_string(r.checks.size()) + " checks pass" +
                   (r.capped ? "; an essential check failed: at most half the points" : "");
    out << "  " << pad(r.name, width) << "  " << pad(points(r.earned, r.points), 11) << "  " << summary << "\n";
    const std::string sub(width + 17, ' ');
    for (const auto& c : r.checks) {
      const bool show = verbose || (&c == r.first_failure() && !r.not_implemented());
      if (!show) continue;
      out << sub << (c.status == Status::Pass ? "pass  " : "FAIL  ") << c.what;
      if (c.status != Status::Pass && c.status != Status::Fail) out << " [" << status_name(c.status) << "]";
      out << "\n";
      if (c.status != Status::Pass) {
        out << sub << "      " << indent(c.detail, sub + "      ") << "\n";
        if (!c.hint.empty()) out << sub << "      hint: " << indent(c.hint, sub + "      ") << "\n";
      }
    }
  }
  out << "\n  " << pad("total", width) << "  " << points(earned, possible) << "\n";
}

nlohmann::json to_json(const std::string& chapter, const std::vector<ExerciseResult>& results) {
  nlohmann::json j{{"chapter", chapter}, {"exercises", nlohmann::json::array()}};
  double earned = 0, possible = 0;
  for (const auto& r : results) {
    nlohmann::json checks = nlohmann::json::array();
    for (const auto& c : r.checks)
      checks.push_back({{"what", c.what}, {"status", status_name(c.status)}, {"detail", c.detail}, {"hint", c.hint}});
    j["exercises"].push_back({{"name", r.name}, {"file", r.file}, {"points_earned", r.earned}, {"capped", r.capped},
                              {"points_possible", r.points}, {"seconds", r.seconds}, {"limit_seconds", r.limit_seconds},
                              {"checks", checks}});
    earned += r.earned;
    possible += r.points;
  }
  j["points_earned"] = earned;
  j["points_possible"] = possible;
  return j;
}

bool stub_untouched(const std::string& source_dir, const Exercise& ex) {
  std::string text;
  if (!read_text(source_dir + "/" + ex.file, text))
    throw std::runtime_error("--stubs-fail-cleanly: cannot read " + source_dir + "/" + ex.file);
  const std::string line = todo_line(ex.name);
  int count = 0;
  for (auto at = text.find(line); at != std::string::npos; at = text.find(line, at + 1)) ++count;
  return count >= ex.stub_todos;
}

}  // namespace

int run_chapter(const std::string& chapter, const std::vector<Exercise>& exercises, int argc, char** argv) {
  CLI::App app{"Grades the homework of chapter '" + chapter +
               "': runs each exercise's checks against your code in homework/" + chapter +
               "/ and prints a score table. Exit status 0 when it graded (whatever the score), 2 when it could not; "
               "with --strict, 1 unless full marks."};
  std::string only, json_path, table_path, stubs_dir;
  double timeout = 0;
  bool verbose = false, in_process = false, strict = false;
  app.add_option("--only", only, "grade one exercise (its function's name)");
  app.add_option("--timeout", timeout,
                 "seconds an exercise may run before it is stopped and fails (default: 20x the reference solution's "
                 "time, at least 2 s)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--strict", strict, "CI: exit 1 unless every exercise gets full marks");
  app.add_flag("--verbose,-v", verbose, "show every check, not only the first that failed");
  app.add_option("--json", json_path, "also write the scores as JSON to this file");
  app.add_option("--table", table_path, "also write the table to this file");
  bool list_only = false;
  app.add_flag("--list", list_only, "print the exercises, their files and their checks with points (Markdown) and exit");
  app.add_flag("--in-process", in_process, "run the checks in this process (for a debugger; a crash ends the grading)");
  app.add_option("--stubs-fail-cleanly", stubs_dir,
                 "CI: the repository's root; exit 0 when every exercise whose stub still holds DGM_TODO "
                 "fails with 'not implemented' alone");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  dgm::runtime::set_num_threads(1);  // one thread: the same sums in the same order on every machine
  if (list_only) {
    std::cout << exercise_list_markdown(exercises);
    return 0;
  }

  const std::map<std::string, double> reference = reference_seconds(chapter);
  std::vector<ExerciseResult> results;
  for (const auto& ex : exercises) {
    if (!only.empty() && ex.name != only) continue;
    const auto known = reference.find(ex.name);
    const double ref = known == reference.end() ? 0.0 : known->second;
    const double limit = timeout > 0 ? timeout : time_limit(ref);
    ExerciseResult r = in_process ? grade_in_process(ex) : grade_isolated(ex, limit);
    for (auto& c : r.checks)  // say where the limit came from
      if (c.status == Status::TimedOut && c.detail.rfind("still running", 0) == 0)
        c.detail += timeout > 0 ? " (--timeout)"
                    : ref > 0   ? " (20x the reference solution's " + fmt(ref) + " s, at least 2 s)"
                                : " (no reference time recorded for it in homework/reference_seconds.json)";
    results.push_back(std::move(r));
  }
  if (results.empty()) {
    std::cerr << "grade_" << chapter << ": no exercise named '" << only << "'; exercises:";
    for (const auto& ex : exercises) std::cerr << " " << ex.name;
    std::cerr << "\n";
    return 2;
  }
  std::ostringstream table;
  print_table(table, chapter, results, verbose,
              in_process    ? std::string("in this process")
              : timeout > 0 ? "each in its own process, stopped after " + fmt(timeout) + " s"
                            : std::string("each in its own process, stopped after 20x its reference solution's time, at least 2 s"));
  std::cout << table.str() << std::flush;
  if (!table_path.empty()) std::ofstream(table_path) << table.str();
  if (!json_path.empty()) std::ofstream(json_path) << to_json(chapter, results).dump(2) << "\n";

  if (!stubs_dir.empty()) try {
    int bad = 0;
    for (size_t i = 0; i < results.size(); ++i) {
      const auto& r = results[i];
      const auto ex = std::find_if(exercises.begin(), exercises.end(), [&](const Exercise& x) { return x.name == r.name; });
      if (!stub_untouched(stubs_dir, *ex)) {
        std::cout << "stubs-fail-cleanly: " << r.file << " has been started on (fewer DGM_TODO lines than the stub); not checked\n";
        continue;
      }
      for (const auto& c : r.checks)
        if (c.status != Status::NotImplemented || c.detail.find("not implemented yet: " + r.name) == std::string::npos) {
          std::cout << "stubs-fail-cleanly: the stub of " << r.name << " gave '" << status_name(c.status) << ": "
                    << c.detail << "' in check '" << c.what << "'\n";
          ++bad;
          break;
        }
    }
    std::cout << (bad ? "stubs-fail-cleanly: FAIL\n" : "stubs-fail-cleanly: every untouched stub fails with 'not implemented'\n");
    return bad ? 1 : 0;
  } catch (const std::exception& e) {
    std::cerr << "grade_" << chapter << ": " << e.what() << "\n";
    return 2;
  }
  if (strict)
    for (const auto& r : results)
      if (!r.full_marks()) return 1;
  return 0;
}

}  // namespace hw
