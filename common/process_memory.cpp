#include "common/process_memory.h"

#include <sys/resource.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#ifdef R1KIT_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace r1kit {

double peak_resident_gb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) * 1024.0 / 1e9;  // Linux reports KiB
}

std::optional<double> cuda_peak_allocated_gb() {
#ifdef R1KIT_WITH_CUDA
  auto* allocator = c10::cuda::CUDACachingAllocator::get();
  if (allocator == nullptr || !allocator->initialized()) return std::nullopt;
  const auto stats = allocator->getDeviceStats(c10::cuda::current_device());
  const auto aggregate = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
  return static_cast<double>(stats.allocated_bytes[aggregate].peak) / 1e9;
#else
  return std::nullopt;
#endif
}

void release_free_heap_memory() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

void add_memory_metrics(nlohmann::json& line) {
  line["memory/peak_rss_gb"] = peak_resident_gb();
  if (auto allocated = cuda_peak_allocated_gb()) line["memory/max_allocated_gb"] = *allocated;
}

}  // namespace r1kit
