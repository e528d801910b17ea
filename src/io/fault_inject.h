// Crash testing for the checkpoint writer: with PF_CRASH_AT_FILE_OP=N in the environment
// the process kills itself (SIGKILL, no cleanup) at its N-th file operation, so a test can
// stop a save at every point and check what survives. PF_TRACE_FILE_OPS=1 lists every
// operation on stderr ("file-op N WHAT PATH"), so the test knows where each save starts.
#pragma once
#include <string>

namespace pf {

// Marks one file operation (create, sync, rename, remove) about to happen.
void file_op_point(const char* what, const std::string& path);

}  // namespace pf
