// Thread count for OpenMP loops and oneDNN (which shares the OpenMP runtime).
#pragma once

namespace pf {

// Sets the number of worker threads; n <= 0 keeps the runtime default.
void set_num_threads(int n);
int num_threads();

}  // namespace pf
