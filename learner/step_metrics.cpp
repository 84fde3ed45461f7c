#include "learner/step_metrics.h"

namespace r1kit {

double StepMetrics::get(const std::string& name) const {
  auto found = values_.find(name);
  return found == values_.end() ? 0.0 : found->second;
}

nlohmann::json StepMetrics::line(int64_t step) const {
  nlohmann::json line = {{"step", step}};
  for (const auto& [name, value] : values_) line[name] = value;
  return line;
}

}  // namespace r1kit
