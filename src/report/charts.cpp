#include "report/charts.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "io/read_file.h"

extern char** environ;

namespace pf {

namespace fs = std::filesystem;

namespace {

// A gnuplot double-quoted string: backslash and double quote escaped, newlines dropped, and
// backquotes (gnuplot would run them as shell commands) made plain quotes.
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\', out += c;
    else if (c == '\n' || c == '\r')
      out += ' ';
    else if (c == '`')
      out += '\'';
    else
      out += c;
  }
  return out + "\"";
}

// Runs `gnuplot script`, stderr into err_path; returns the exit status (127: not found).
int run_gnuplot(const std::string& script, const std::string& err_path) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  std::string prog = "gnuplot";
  char* argv[] = {prog.data(), const_cast<char*>(script.c_str()), nullptr};
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, "gnuplot", &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return rc == ENOENT ? 127 : 126;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

// A temporary directory removed when this goes out of scope, whatever happened.
struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "pf_plot_XXXXXX").string();
    PF_CHECK(::mkdtemp(tmpl.data()) != nullptr,
             "cannot create a temporary directory: ", std::strerror(errno));
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

bool gnuplot_available() {
  const char* p = std::getenv("PATH");
  std::string path = p ? p : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= path.size()) {
    const size_t end = path.find(':', start);
    const std::string d = path.substr(start, end == std::string::npos ? end : end - start);
    if (!d.empty() && ::access((fs::path(d) / "gnuplot").c_str(), X_OK) == 0) return true;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return false;
}

void draw_png(const Chart& c, const std::string& png_path) {
  PF_CHECK(gnuplot_available(), "cannot draw ", png_path,
           ": gnuplot is not installed (apt-get install gnuplot-nox)");
  TempDir tmp;
  std::vector<std::string> plots;
  for (size_t i = 0; i < c.series.size(); ++i) {
    const Series& s = c.series[i];
    PF_CHECK(s.x.size() == s.y.size(), "chart '", c.title, "': series '", s.title, "' has ",
             s.x.size(), " x and ", s.y.size(), " y values");
    std::string file = std::to_string(i);
    file += ".dat";
    const std::string data = (fs::path(tmp.path) / file).string();
    std::ofstream f(data);
    int64_t n = 0;
    for (size_t k = 0; k < s.x.size(); ++k) {
      if (!std::isfinite(s.x[k]) || !std::isfinite(s.y[k])) continue;
      if ((c.logx && s.x[k] <= 0) || (c.logy && s.y[k] <= 0)) continue;
      f.precision(10);
      f << s.x[k] << ' ' << s.y[k] << '\n';
      ++n;
    }
    if (n == 0) continue;
    plots.push_back(quoted(data) + " using 1:2 with linespoints lw 2 pt 7 ps 0.8 title " +
                    quoted(s.title));
  }
  PF_CHECK(!plots.empty(), "chart '", c.title, "' has no finite points to draw");
  const std::string out_tmp = png_path + ".tmp." + std::to_string(::getpid());
  std::string script = "set terminal pngcairo size 900,540 noenhanced font 'sans,10'\n";
  script += "set output " + quoted(out_tmp) + "\n";
  script += "set title " + quoted(c.title) + "\nset xlabel " + quoted(c.xlabel) + "\nset ylabel " +
            quoted(c.ylabel) + "\n";
  script += "set grid\nset key outside right top\n";
  if (c.logx) script += "set logscale x\n";
  if (c.logy) script += "set logscale y\n";
  script += "plot ";
  for (size_t i = 0; i < plots.size(); ++i) {
    if (i) script += ", \\\n     ";
    script += plots[i];
  }
  script += "\nset output\n";
  const std::string script_path = (fs::path(tmp.path) / "chart.gp").string();
  std::ofstream(script_path) << script;
  const std::string err_path = (fs::path(tmp.path) / "stderr.txt").string();
  const int rc = run_gnuplot(script_path, err_path);
  std::error_code ec;
  if (rc != 0 || !fs::exists(out_tmp, ec) || fs::file_size(out_tmp, ec) == 0) {
    fs::remove(out_tmp, ec);
    std::string err = fs::exists(err_path) ? read_file(err_path) : "";
    if (err.size() > 600) err = err.substr(0, 600) + "...";
    fail("gnuplot could not draw ", png_path, " (exit ", rc, ")", err.empty() ? "" : ": ", err);
  }
  fs::rename(out_tmp, png_path, ec);
  if (ec) {
    fs::remove(out_tmp);
    fail("cannot write ", png_path, ": ", ec.message());
  }
}

}  // namespace pf
