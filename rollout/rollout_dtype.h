// The rollout compute dtype that `trainer.rollout_dtype: "auto"` (the
// default) stands for: bfloat16 where its decode is fast and learns as well as
// float32 with the rollout correction on (CUDA; CPUs with AVX512-BF16 or
// AMX), float32 elsewhere. Functions only; any thread.
#pragma once

#include <c10/core/Device.h>

#include <string>

namespace r1kit {

// Whether bfloat16 rollouts are the fast path on `device`.
bool fast_bfloat16_rollouts(const c10::Device& device);

// "auto" -> "bfloat16" or "float32" for `device`; any other name unchanged.
std::string resolve_rollout_dtype(const std::string& name, const c10::Device& device);

}  // namespace r1kit
