// Wall-clock time since a point, for the step timings in metrics and logs
// (time/step, prefill and decode seconds, pipeline steps). Header-only.
#pragma once

#include <chrono>

namespace r1kit {

using SteadyClock = std::chrono::steady_clock;

// Seconds from `start` to now on the steady clock.
inline double seconds_since(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

}  // namespace r1kit
