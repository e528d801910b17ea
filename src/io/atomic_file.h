// Crash-safe file writes: a reader sees either the old file or the complete new one.
#pragma once
#include <cstdio>
#include <functional>
#include <string>

#include "io/read_file.h"  // read_file, for the callers that write and read back

namespace pf {

// Writes through `writer` into PATH.tmp.<pid>, flushes and fsyncs it, renames it over
// `path`, then fsyncs the parent directory. On any failure the temp file is removed and a
// pf::Error naming the path is thrown (exceptions from `writer` propagate the same way).
void write_file_atomic(const std::string& path, const std::function<void(std::FILE*)>& writer);
void write_file_atomic(const std::string& path, const std::string& contents);
// Syncs the directory that holds `path`, so a rename into it survives a power loss.
void sync_dir(const std::string& path);

}  // namespace pf
