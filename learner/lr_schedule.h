// Learning-rate schedules with Hugging Face Trainer's formulas (transformers'
// get_scheduler): linear warm-up from 0, then constant, cosine to 0 or linear
// to 0 at `total_steps`. A value type; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace r1kit {

// The schedule names a recipe may give (lr_scheduler_type).
const std::vector<std::string>& lr_scheduler_types();

class LrSchedule {
 public:
  // type: constant (HF constant_with_warmup when warmup_steps > 0; that name is
  // accepted too), cosine or linear. total_steps: optimizer steps of the run,
  // > 0 for cosine and linear. Unknown names and bad counts throw Error(kConfig).
  LrSchedule(std::string type, int64_t warmup_steps, int64_t total_steps);

  // The factor on the base learning rate for the update at 0-based `step`
  // (HF's lr_lambda(step)): step / warmup during warm-up, then 1 (constant),
  // 0.5 (1 + cos(pi p)) (cosine) or 1 - p (linear), p = (step - warmup) /
  // (total - warmup), never below 0; 0 after total_steps.
  double multiplier(int64_t step) const;

  const std::string& type() const { return type_; }
  int64_t warmup_steps() const { return warmup_steps_; }
  int64_t total_steps() const { return total_steps_; }

 private:
  std::string type_;
  int64_t warmup_steps_;
  int64_t total_steps_;
};

// HF's rule: warmup_steps when > 0, else ceil(warmup_ratio * total_steps).
int64_t resolve_warmup_steps(int64_t warmup_steps, double warmup_ratio, int64_t total_steps);

}  // namespace r1kit
