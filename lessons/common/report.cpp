// dgm/lessons/common/report.cpp
#include "lessons/common/report.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "autograd/tensor.h"

namespace dgm::lesson {

namespace fs = std::filesystem;

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  return out;
}

namespace {

// A file name as a relative URL: bytes outside [A-Za-z0-9._-] percent-encoded.
std::string url_of(const std::string& file) {
  std::ostringstream os;
  for (unsigned char c : file) {
    if (std::isalnum(c) || c == '.' || c == '_' || c == '-' || c == '/')
      os << c;
    else
      os << '%' << std::uppercase << std::hex << std::setw(2) << std::setfill('0') << int(c) << std::dec;
  }
  return os.str();
}

const char* kStyle = R"(<style>
body { font-family: sans-serif; max-width: 70em; margin: 1em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
.pass { color: #176f2c; } .fail { color: #b00020; font-weight: bold; }
.summary { font-size: 1.1em; padding: .4em .7em; border-radius: 4px; display: inline-block; }
.summary.pass { background: #e3f4e6; } .summary.fail { background: #fde2e4; }
table { border-collapse: collapse; } td, th { padding: .15em .6em; border-bottom: 1px solid #eee; text-align: left; }
td.num { text-align: right; font-family: monospace; }
ul.checks { list-style: none; padding-left: 0; font-family: monospace; font-size: .9em; }
ul.checks li { padding: .1em 0; }
figure { display: inline-block; margin: .5em 1em .5em 0; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #ddd; image-rendering: pixelated; }
figcaption { font-family: monospace; font-size: .85em; color: #555; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; font-size: .8em; }
</style>
)";

std::string number(double v) {
  if (!std::isfinite(v)) return "null";
  std::ostringstream os;
  os << std::setprecision(6) << v;
  return os.str();
}

struct OutputFile {
  std::string name;
  fs::file_time_type written;
};

// The regular files of `dir` written at or after `since`, oldest first.
std::vector<OutputFile> files_written(const std::string& dir, fs::file_time_type since) {
  std::vector<OutputFile> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_regular_file()) continue;
    const auto t = e.last_write_time(ec);
    if (ec || t < since) continue;
    const std::string name = e.path().filename().string();
    if (name == "index.html") continue;
    files.push_back({name, t});
  }
  std::sort(files.begin(), files.end(), [](const OutputFile& a, const OutputFile& b) {
    return a.written != b.written ? a.written < b.written : a.name < b.name;
  });
  return files;
}

// A terminal's progress bar redraws its line after '\r': keep what was shown last on each line.
std::string final_lines(const std::string& log) {
  std::string out, line;
  std::istringstream in(log);
  while (std::getline(in, line)) {
    while (!line.empty() && line.back() == '\r') line.pop_back();
    const auto cr = line.find_last_of('\r');
    out += (cr == std::string::npos ? line : line.substr(cr + 1)) + "\n";
  }
  return out;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  if (!out) throw Error("report: cannot write '" + path.string() + "'");
  out << text;
}

}  // namespace

std::string write_report(const std::string& out_dir, const Report& r) {
  int failed = 0;
  for (const auto& c : r.checks) failed += c.passed ? 0 : 1;
  const bool ok = failed == 0 && r.error.empty() && r.interrupted.empty();
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>lesson_" << html_escape(r.name)
    << "</title>\n"
    << kStyle << "</head>\n<body>\n";
  if (fs::path(out_dir).parent_path().filename() == "runs")
    h << "<p><a href=\"../index.html\">all runs</a></p>\n";
  h << "<h1>lesson_" << html_escape(r.name) << ": " << html_escape(r.description) << "</h1>\n";
  h << "<p><code>" << html_escape(r.command) << "</code></p>\n";
  h << "<p class=\"summary " << (ok ? "pass" : "fail") << "\">" << (r.checks.size() - failed) << " of " << r.checks.size()
    << " checks passed" << (r.error.empty() ? "" : "; the lesson stopped with an error")
    << (r.interrupted.empty() ? "" : "; the run was interrupted: what it had done is below, and --resume continues it") << "</p>\n";
  if (!r.error.empty()) h << "<p class=\"fail\">" << html_escape(r.error) << "</p>\n";
  if (!r.interrupted.empty()) h << "<p class=\"fail\">Interrupted: " << html_escape(r.interrupted) << "</p>\n";

  h << "<h2>Checks</h2>\n<ul class=\"checks\">\n";
  for (const auto& c : r.checks)
    h << "<li class=\"" << (c.passed ? "pass" : "fail") << "\">" << (c.passed ? "&#10003; " : "&#10007; ")
      << html_escape(c.line) << "</li>\n";
  h << "</ul>\n";

  h << "<h2>Metrics</h2>\n<table>\n";
  for (const auto& [k, v] : r.metrics) h << "<tr><td>" << html_escape(k) << "</td><td class=\"num\">" << number(v) << "</td></tr>\n";
  h << "</table>\n";

  const auto files = files_written(out_dir, r.started);
  h << "<h2>Pictures</h2>\n";
  int pictures = 0;
  for (const auto& f : files)
    if (ends_with(f.name, ".png")) {
      h << "<figure><a href=\"" << url_of(f.name) << "\"><img src=\"" << url_of(f.name) << "\" alt=\""
        << html_escape(f.name) << "\"></a><figcaption>" << html_escape(f.name) << "</figcaption></figure>\n";
      ++pictures;
    }
  if (pictures == 0) h << "<p>(this run drew no pictures)</p>\n";
  h << "<h2>Other outputs</h2>\n<ul>\n";
  for (const auto& f : files)
    if (!ends_with(f.name, ".png"))
      h << "<li><a href=\"" << url_of(f.name) << "\">" << html_escape(f.name) << "</a></li>\n";
  h << "</ul>\n";
  h << "<h2>Log</h2>\n<details open><summary>everything the lesson printed</summary>\n<pre>" << html_escape(final_lines(r.log))
    << "</pre></details>\n</body>\n</html>\n";
  const fs::path page = fs::path(out_dir) / "index.html";
  write_file(page, h.str());
  return page.string();
}

std::string write_runs_index(const std::string& runs_dir) {
  struct Run {
    std::string name;
    fs::file_time_type written;
    int passed = -1, failed = -1;
  };
  std::vector<Run> runs;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(runs_dir, ec)) {
    const fs::path page = e.path() / "index.html";
    if (!e.is_directory() || !fs::is_regular_file(page)) continue;
    Run run{e.path().filename().string(), fs::last_write_time(page, ec)};
    std::ifstream in(e.path() / "metrics.json");
    if (in) {
      const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
      if (j.is_object() && j.contains("checks_passed") && j.contains("checks_failed") && j["checks_passed"].is_number() &&
          j["checks_failed"].is_number()) {
        run.passed = j["checks_passed"].get<int>();
        run.failed = j["checks_failed"].get<int>();
      }
    }
    runs.push_back(run);
  }
  std::sort(runs.begin(), runs.end(), [](const Run& a, const Run& b) { return a.name < b.name; });
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>dgm runs</title>\n"
    << kStyle << "</head>\n<body>\n<h1>dgm: the lesson runs in this folder</h1>\n<table>\n"
    << "<tr><th>run</th><th>checks</th><th>page written</th></tr>\n";
  for (const auto& run : runs) {
    const auto sys = std::chrono::time_point_cast<std::chrono::system_clock::duration>(
        run.written - fs::file_time_type::clock::now() + std::chrono::system_clock::now());
    const std::time_t t = std::chrono::system_clock::to_time_t(sys);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M", std::localtime(&t));
    h << "<tr><td><a href=\"" << url_of(run.name) << "/index.html\">" << html_escape(run.name) << "</a></td><td class=\""
      << (run.failed == 0 ? "pass" : "fail") << "\">";
    if (run.passed < 0)
      h << "no metrics.json";
    else
      h << run.passed << " of " << run.passed + run.failed << " passed";
    h << "</td><td>" << when << "</td></tr>\n";
  }
  h << "</table>\n</body>\n</html>\n";
  const fs::path page = fs::path(runs_dir) / "index.html";
  write_file(page, h.str());
  return page.string();
}

}  // namespace dgm::lesson
