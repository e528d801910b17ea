#include "io/read_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/error.h"

namespace pf {

namespace {

const char* kind_of(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a plain file";
}

// O_NONBLOCK: opening a FIFO for reading must not wait for a writer before we can refuse it.
int open_regular(const std::string& path, struct stat* st) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) fail("cannot open ", path, ": ", std::strerror(errno));
  if (::fstat(fd, st) != 0) {
    const int saved = errno;
    ::close(fd);
    fail("cannot stat ", path, ": ", std::strerror(saved));
  }
  if (!S_ISREG(st->st_mode)) {
    ::close(fd);
    fail(path, ": not a regular file (", kind_of(st->st_mode), ")");
  }
  return fd;
}

}  // namespace

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {
  }, sb{};
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

void require_regular_file(const std::string& path) {
  struct stat st {};
  ::close(open_regular(path, &st));
}

std::string read_file(const std::string& path, uint64_t max_bytes) {
  struct stat st {};
  const int fd = open_regular(path, &st);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes) {
    ::close(fd);
    fail(path, ": file is ", size, " bytes, more than the ", max_bytes, " this reader accepts");
  }
  std::string out(size, '\0');
  size_t got = 0;
  while (got < size) {
    const ssize_t n = ::read(fd, out.data() + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int saved = errno;
      ::close(fd);
      fail("cannot read ", path, ": ", std::strerror(saved));
    }
    if (n == 0) break;  // the file shrank while we read it
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(got);
  return out;
}

}  // namespace pf
