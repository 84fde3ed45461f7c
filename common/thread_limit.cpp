#include "common/thread_limit.h"

// From the libgomp that LibTorch loads; weak, so that a LibTorch built
// without OpenMP leaves the limit a no-op instead of failing to link.
extern "C" {
void omp_set_num_threads(int) __attribute__((weak));
int omp_get_max_threads() __attribute__((weak));
}

namespace r1kit {

ThreadLimit::ThreadLimit(int64_t threads) {
  if (threads <= 0 || omp_set_num_threads == nullptr || omp_get_max_threads == nullptr) return;
  previous_ = omp_get_max_threads();
  omp_set_num_threads(static_cast<int>(threads));
}

ThreadLimit::~ThreadLimit() {
  if (previous_ > 0) omp_set_num_threads(previous_);
}

}  // namespace r1kit
