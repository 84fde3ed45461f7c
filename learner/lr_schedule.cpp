#include "learner/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "common/error.h"

namespace r1kit {

const std::vector<std::string>& lr_scheduler_types() {
  static const std::vector<std::string> names = {"constant", "constant_with_warmup", "cosine",
                                                 "linear"};
  return names;
}

LrSchedule::LrSchedule(std::string type, int64_t warmup_steps, int64_t total_steps)
    : type_(std::move(type)), warmup_steps_(warmup_steps), total_steps_(total_steps) {
  const auto& known = lr_scheduler_types();
  if (std::find(known.begin(), known.end(), type_) == known.end()) {
    throw_config_error("lr_scheduler_type: unknown schedule \"" + type_ +
                       "\"; known: constant, constant_with_warmup, cosine, linear");
  }
  if (type_ == "constant_with_warmup") type_ = "constant";
  if (warmup_steps_ < 0)
    throw_config_error("warmup_steps: must be >= 0, got " + std::to_string(warmup_steps_));
  if (type_ != "constant" && total_steps_ <= 0) {
    throw_config_error("lr_scheduler_type " + type_ +
                       " needs the run's total optimizer steps (> 0), got " +
                       std::to_string(total_steps_));
  }
}

double LrSchedule::multiplier(int64_t step) const {
  if (step < warmup_steps_) {
    return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps_));
  }
  if (type_ == "constant") return 1.0;
  const double progress = static_cast<double>(step - warmup_steps_) /
                          static_cast<double>(std::max<int64_t>(1, total_steps_ - warmup_steps_));
  // Past total_steps HF's cosine rises again; the rate stays at 0 here instead.
  if (type_ == "cosine")
    return std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * std::min(progress, 1.0))));
  // linear, in HF's form so the values match it bit for bit
  return std::max(0.0, static_cast<double>(total_steps_ - step) /
                           static_cast<double>(std::max<int64_t>(1, total_steps_ - warmup_steps_)));
}

int64_t resolve_warmup_steps(int64_t warmup_steps, double warmup_ratio, int64_t total_steps) {
  if (warmup_steps > 0) return warmup_steps;
  return static_cast<int64_t>(
      std::ceil(warmup_ratio * static_cast<double>(std::max<int64_t>(0, total_steps))));
}

}  // namespace r1kit
