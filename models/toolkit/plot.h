// dgm/models/toolkit/plot.h — curves and scatter plots as PNG, drawn by gnuplot from
// the CSV files a run writes (the CSV is the data; the PNG a view of it).
//
// Each plot also leaves its gnuplot script (<png>.gp) beside the PNG, to
// re-draw or restyle by hand. When gnuplot is not installed, nothing but the
// CSV is written and one hint is printed (apt-get install gnuplot-nox).
#pragma once

#include <string>
#include <vector>

namespace dgm::plot {

bool gnuplot_available();

// A CSV file: a header row of column names, then one row per entry (9 digits).
// Throws naming the path when it cannot be written.
void write_csv(const std::string& path, const std::vector<std::string>& columns,
               const std::vector<std::vector<double>>& rows);

struct Series {
  int column;         // 1-based CSV column for y
  std::string title;  // legend
};

// Lines of y columns against column `x_column` of a CSV with a header row; a "nan" cell is a
// point the series does not have (its line joins the points either side).
// Returns true when the PNG was drawn.
bool line_plot(const std::string& csv, const std::string& png, const std::string& title, const std::string& xlabel,
               const std::string& ylabel, int x_column, const std::vector<Series>& series, bool log_y = false,
               bool log_x = false);

// Points (x, y) from columns 1 and 2 of a CSV with a header row; with
// `color_column` > 0 the points are coloured by that column (e.g. a label).
bool scatter_plot(const std::string& csv, const std::string& png, const std::string& title, int color_column = 0,
                  double range = 0);  // range > 0: both axes [-range, range]

}  // namespace dgm::plot
