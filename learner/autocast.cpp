#include "learner/autocast.h"

#include <ATen/autocast_mode.h>

namespace r1kit {

AutocastGuard::AutocastGuard(at::Device device, at::ScalarType dtype, bool enabled)
    : enabled_(enabled), device_type_(device.type()) {
  if (!enabled_) return;
  TORCH_CHECK(device_type_ == at::kCPU || device_type_ == at::kCUDA,
              "autocast: unsupported device ", device);
  was_enabled_ = at::autocast::is_autocast_enabled(device_type_);
  previous_dtype_ = at::autocast::get_autocast_dtype(device_type_);
  at::autocast::set_autocast_dtype(device_type_, dtype);
  at::autocast::set_autocast_enabled(device_type_, true);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!enabled_) return;
  // The cache of casted weights lives for the outermost region only (as torch.autocast).
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(device_type_, was_enabled_);
  at::autocast::set_autocast_dtype(device_type_, previous_dtype_);
}

}  // namespace r1kit
