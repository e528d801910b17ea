#include "io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/error.h"
#include "io/fault_inject.h"

namespace pf {

namespace {

std::string errno_str() { return std::strerror(errno); }

std::string parent_dir(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

// Makes the rename itself durable; without this a crash can lose the new directory entry.
void sync_dir(const std::string& path) {
  const std::string dir = parent_dir(path);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail("cannot open directory ", dir, " to sync ", path, ": ", errno_str());
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  // Some filesystems refuse fsync on directories; that is not a failure of the write.
  if (rc != 0 && saved != EINVAL && saved != EROFS) {
    errno = saved;
    fail("cannot sync directory ", dir, " after writing ", path, ": ", errno_str());
  }
}

void write_file_atomic(const std::string& path, const std::function<void(std::FILE*)>& writer) {
  // Replacing a FIFO, device, directory or symlink would destroy something we did not write.
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    fail("cannot write ", path, ": it exists and is not a regular file");
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  file_op_point("create", path);
  // O_EXCL | O_NOFOLLOW: never write through (or over) a file or link that is already there.
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot write ", path, ": cannot create ", tmp, ": ", errno_str());
  std::FILE* f = ::fdopen(fd, "wb");
  if (f == nullptr) {
    ::close(fd);
    fail("cannot write ", path, ": cannot open ", tmp, ": ", errno_str());
  }
  // Closes (if still open) and removes the temp file, preserving errno for the message.
  auto abandon = [&](const char* what) {
    const int saved = errno;
    if (f != nullptr) std::fclose(f);
    f = nullptr;
    std::remove(tmp.c_str());
    errno = saved;
    fail("cannot write ", path, ": ", what, " failed: ", errno_str());
  };
  try {
    writer(f);
  } catch (...) {
    if (f != nullptr) std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
  if (std::ferror(f)) {
    // fwrite reports errors through the stream flag; errno is from the failing call.
    abandon("write");
  }
  if (std::fflush(f) != 0) abandon("flush");
  if (::fsync(::fileno(f)) != 0) abandon("fsync");
  const int rc = std::fclose(f);
  f = nullptr;
  if (rc != 0) abandon("close");
  file_op_point("rename", path);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) abandon("rename");
  sync_dir(path);
}

void write_file_atomic(const std::string& path, const std::string& contents) {
  write_file_atomic(path, [&](std::FILE* f) {
    if (!contents.empty() && std::fwrite(contents.data(), 1, contents.size(), f) != contents.size())
      fail("cannot write ", path, ": write failed: ", errno_str());
  });
}

}  // namespace pf
