// dgm/lessons/common/report.h — the page a student opens instead of reading
// a lesson's log: <out>/index.html with the lesson's title, its CHECK lines
// (pass green, fail red), its metrics, every picture it made in the order it
// made them, links to its curves and checkpoints, and the whole log; and
// runs/index.html, one line per run present. Plain HTML and CSS, nothing
// fetched from anywhere: open the file in any browser (docs/outputs.md).
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace dgm::lesson {

struct ReportCheck {
  std::string line;  // the CHECK line as printed, without "CHECK "
  bool passed = false;
};

struct Report {
  std::string name, description, command;  // command: the flags the lesson ran with
  std::vector<ReportCheck> checks;
  std::map<std::string, double> metrics;
  std::string log;    // everything the lesson printed on stdout
  std::string error;  // the error that stopped the lesson, if one did
  std::string interrupted;  // "interrupted at step N of M (tag)" when Ctrl-C or SIGTERM ended it early
  // Files in the output folder written before this instant (an earlier run's
  // leftovers) are not listed.
  std::filesystem::file_time_type started;
};

// Writes <out_dir>/index.html. Pictures (.png) are shown in the order they
// were written (modification time, then name); curves (.csv), checkpoints
// (.safetensors) and other outputs are linked. Returns the page's path.
std::string write_report(const std::string& out_dir, const Report& report);

// Writes <runs_dir>/index.html linking every <runs_dir>/<run>/index.html, with
// each run's checks passed and failed (from its metrics.json) and its time.
std::string write_runs_index(const std::string& runs_dir);

// Escapes &, <, >, " and ' for HTML text and attribute values.
std::string html_escape(const std::string& text);

}  // namespace dgm::lesson
