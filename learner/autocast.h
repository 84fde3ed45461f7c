// Automatic mixed precision for the learner's forward passes (Micikevicius et
// al. 2018; torch.autocast): inside an AutocastGuard, matmuls on the guarded
// device type run in the given low-precision dtype while torch keeps
// reductions such as softmax in float32. Thread-local, like torch's own state:
// a guard affects only the thread that made it.
#pragma once

#include <ATen/ATen.h>

namespace r1kit {

class AutocastGuard {
 public:
  // Turns autocast to `dtype` on for `device`'s type (CPU or CUDA) until
  // destruction; `enabled` false makes the guard do nothing.
  AutocastGuard(at::Device device, at::ScalarType dtype, bool enabled = true);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool enabled_;
  at::DeviceType device_type_;
  bool was_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kFloat;
};

}  // namespace r1kit
