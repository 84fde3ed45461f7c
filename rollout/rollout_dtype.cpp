#include "rollout/rollout_dtype.h"

namespace r1kit {

bool fast_bfloat16_rollouts(const c10::Device& device) {
  if (device.is_cuda()) return true;
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_supports("avx512bf16") || __builtin_cpu_supports("amx-bf16");
#else
  return false;
#endif
}

std::string resolve_rollout_dtype(const std::string& name, const c10::Device& device) {
  if (name != "auto") return name;
  return fast_bfloat16_rollouts(device) ? "bfloat16" : "float32";
}

}  // namespace r1kit
