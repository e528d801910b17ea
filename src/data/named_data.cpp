#include "data/named_data.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "base/error.h"

extern char** environ;

namespace pf {
namespace fs = std::filesystem;

namespace {

struct NamedSet {
  const char *name, *dir, *script, *note;
};
constexpr NamedSet kSets[] = {
    {"spoken-digits", "data/spoken-digits", "scripts/make_spoken_digits.sh",
     "espeak-ng and sox; about a minute"},
    {"bible-sections", "data/bible-sections", "scripts/make_bible_sections.sh",
     "from the KJV Bible; a few seconds"},
};

std::string find_script(const NamedSet& s) {
  std::vector<fs::path> candidates;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back(exe.parent_path().parent_path() / s.script);
  candidates.push_back(fs::path(s.script));
  for (const fs::path& p : candidates)
    if (fs::is_regular_file(p, ec)) return p.string();
  fail(s.name, ": ", s.dir, " is not built and ", s.script,
       " was not found beside the executable or under the working directory; run it from the "
       "source tree: bash ", s.script);
}

// Runs `bash script dir` with this process's stdout and stderr (the script prints progress).
void run_script(const NamedSet& set, const std::string& script) {
  // Absolute: the script works from the source tree, not from our working directory.
  std::string bash = "bash", dir = fs::absolute(set.dir).string(), s = script;
  char* argv[] = {bash.data(), s.data(), dir.data(), nullptr};
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, "bash", nullptr, nullptr, argv, environ);
  PF_CHECK(rc == 0, set.name, ": cannot run bash: ", std::strerror(rc));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  PF_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, set.name, ": ", script,
           " failed (its message is above); the data set was not built");
}

}  // namespace

std::string resolve_data_source(const std::string& source) {
  for (const NamedSet& s : kSets) {
    if (source != s.name) continue;
    const fs::path marker = fs::path(s.dir) / ".complete";
    if (fs::exists(marker)) return s.dir;
    const std::string script = find_script(s);
    std::printf("%s: building %s with %s (%s)\n", s.name, s.dir, script.c_str(), s.note);
    std::fflush(stdout);
    run_script(s, script);
    PF_CHECK(fs::exists(marker), s.name, ": ", script, " finished but ", marker.string(),
             " is missing");
    return s.dir;
  }
  return source;
}

}  // namespace pf
