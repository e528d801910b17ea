// Thread count for OpenMP loops and oneDNN (which shares the OpenMP runtime).
#pragma once

namespace pf {

constexpr int kMaxThreads = 256;

// Sets the number of worker threads; n <= 0 keeps the runtime default.
void set_num_threads(int n);  // n in [0, kMaxThreads], else an error naming --threads
int num_threads();

}  // namespace pf
