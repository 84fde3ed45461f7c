// How much memory this process has used: the peak resident set size from the
// kernel and, when the process has used CUDA, the caching allocator's peak of
// allocated bytes on each device's current one. For the `memory/...` fields
// of every metrics line. Any thread.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>

namespace r1kit {

// Peak resident set size of this process so far, in GB (10^9 bytes).
double peak_resident_gb();

// The CUDA caching allocator's peak allocated bytes on the current device, in
// GB; nullopt in a build without CUDA or a process that has not used CUDA.
std::optional<double> cuda_peak_allocated_gb();

// Hands the heap's free pages back to the kernel (glibc's malloc_trim): between
// the phases of a step, so memory one phase freed is not kept resident by the
// allocator's arenas through the next. Does nothing elsewhere.
void release_free_heap_memory();

// Sets memory/peak_rss_gb and, on CUDA, memory/max_allocated_gb in `line`.
void add_memory_metrics(nlohmann::json& line);

}  // namespace r1kit
