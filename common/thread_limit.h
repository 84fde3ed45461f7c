// A scoped cap on the OpenMP threads of the calling thread's ATen and oneDNN
// ops: engines and learner lanes that run side by side, one per core, each
// keep to their share instead of each starting a team of every core. Only
// the calling thread's setting changes (omp_set_num_threads), unlike
// at::set_num_threads, which also changes the process default and MKL's.
#pragma once

#include <cstdint>

namespace r1kit {

class ThreadLimit {
 public:
  // Caps this thread at `threads` until destroyed; 0 leaves it as it is.
  explicit ThreadLimit(int64_t threads);
  ~ThreadLimit();
  ThreadLimit(const ThreadLimit&) = delete;
  ThreadLimit& operator=(const ThreadLimit&) = delete;

 private:
  int previous_ = 0;  // the setting to restore; 0 = nothing changed
};

}  // namespace r1kit
