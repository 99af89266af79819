// dgm/models/toolkit/plot.cpp
#include "models/toolkit/plot.h"

#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>

#include "autograd/tensor.h"

namespace dgm::plot {

void write_csv(const std::string& path, const std::vector<std::string>& columns,
               const std::vector<std::vector<double>>& rows) {
  std::ofstream out(path);
  if (!out) throw Error("write_csv: cannot write '" + path + "'");
  for (size_t i = 0; i < columns.size(); ++i) out << (i ? "," : "") << columns[i];
  out << "\n" << std::setprecision(9);
  for (auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) out << (i ? "," : "") << r[i];
    out << "\n";
  }
}

namespace {
bool g_hint_printed = false;

std::string quote(const std::string& s) {
  std::string r = "'";
  for (char c : s) r += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return r + "'";
}

std::string gp_string(const std::string& s) {  // a gnuplot "..." string
  std::string r = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') r += '\\';
    r += c;
  }
  return r + "\"";
}

bool run(const std::string& png, const std::string& script) {
  if (!gnuplot_available()) {
    if (!g_hint_printed)
      std::cout << "   (gnuplot not found: CSVs are written, PNG plots are not; apt-get install gnuplot-nox)\n";
    g_hint_printed = true;
    return false;
  }
  const std::string gp = png + ".gp";
  {
    std::ofstream out(gp);
    if (!out) throw Error("plot: cannot write '" + gp + "'");
    out << script;
  }
  const std::string cmd = "gnuplot " + quote(gp) + " 2>" + quote(png + ".log");
  if (std::system(cmd.c_str()) != 0) {
    std::cout << "   (gnuplot failed on " << gp << "; see " << png << ".log)\n";
    return false;
  }
  std::remove((png + ".log").c_str());
  return true;
}

// noenhanced: names such as digits_pixelcnn print as written (gnuplot would
// otherwise read the underscore as a subscript).
std::string header(const std::string& csv, const std::string& png, const std::string& title) {
  return "set terminal pngcairo noenhanced size 800,560 font 'Sans,11'\nset output " + gp_string(png) +
         "\nset datafile separator ','\nset key autotitle columnhead\nset grid\nset title " + gp_string(title) +
         "\n# data: " + csv + "\n";
}
}  // namespace

bool gnuplot_available() {
  static const bool found = std::system("command -v gnuplot >/dev/null 2>&1") == 0;
  return found;
}

bool line_plot(const std::string& csv, const std::string& png, const std::string& title, const std::string& xlabel,
               const std::string& ylabel, int x_column, const std::vector<Series>& series, bool log_y, bool log_x) {
  std::string s = header(csv, png, title) + "set xlabel " + gp_string(xlabel) + "\nset ylabel " + gp_string(ylabel) + "\n";
  if (log_y) s += "set logscale y\n";
  if (log_x) s += "set logscale x\n";
  // a NaN in a column is a point that series does not have (a validation every few epochs, a model
  // trained at some sizes only): skipped, its line drawn on from the previous point to the next
  s += "set datafile missing \"nan\"\n";
  s += "plot ";
  for (size_t i = 0; i < series.size(); ++i)
    s += std::string(i ? ", " : "") + gp_string(csv) + " using " + std::to_string(x_column) + ":" +
         std::to_string(series[i].column) + " with lines lw 2 title " + gp_string(series[i].title);
  return run(png, s + "\n");
}

bool scatter_plot(const std::string& csv, const std::string& png, const std::string& title, int color_column,
                  double range) {
  std::string s = header(csv, png, title) + "set size ratio -1\nunset key\n";
  if (range > 0)
    s += "set xrange [" + std::to_string(-range) + ":" + std::to_string(range) + "]\nset yrange [" +
         std::to_string(-range) + ":" + std::to_string(range) + "]\n";
  if (color_column > 0)
    s += "set palette defined (0 '#c0392b', 1 '#2e86c1')\nunset colorbox\nplot " + gp_string(csv) + " using 1:2:" +
         std::to_string(color_column) + " with points pt 7 ps 0.4 lc palette\n";
  else
    s += "plot " + gp_string(csv) + " using 1:2 with points pt 7 ps 0.3 lc rgb '#2e86c1'\n";
  return run(png, s);
}

}  // namespace dgm::plot
