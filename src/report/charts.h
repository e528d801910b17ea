// Line charts drawn into PNG files by gnuplot (Debian's gnuplot-nox), for `plot` and the
// compare report.
#pragma once
#include <string>
#include <vector>

namespace pf {

struct Series {
  std::string title;
  std::vector<double> x, y;  // same length; non-finite points are skipped
};

struct Chart {
  std::string title, xlabel, ylabel;
  bool logx = false, logy = false;
  std::vector<Series> series;  // empty series are skipped
};

inline Series make_series(const std::string& title) {
  Series s;
  s.title = title;
  return s;
}
inline Chart make_chart(const std::string& title, const std::string& xlabel,
                        const std::string& ylabel, bool logx = false, bool logy = false) {
  Chart c;
  c.title = title, c.xlabel = xlabel, c.ylabel = ylabel, c.logx = logx, c.logy = logy;
  return c;
}

bool gnuplot_available();

// Writes the chart to png_path (atomically: a reader never sees half an image). Errors name
// gnuplot's complaint, or say how to install it.
void draw_png(const Chart& c, const std::string& png_path);

}  // namespace pf
