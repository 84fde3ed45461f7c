// One RL step's metrics line (TRL's and verl's names where they have one):
// named values filled by the parts that know them — rollout collection,
// rewards, the learner, the value model — then written to metrics.jsonl and
// TensorBoard by the trainer. Plain data; one thread.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace r1kit {

class StepMetrics {
 public:
  // Sets `name`, replacing an earlier value.
  void set(const std::string& name, double value) { values_[name] = value; }
  // The value of `name`; 0 when nothing set it.
  double get(const std::string& name) const;
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  const std::map<std::string, double>& values() const { return values_; }

  // {"step": step, name: value, ...}: one line of metrics.jsonl.
  nlohmann::json line(int64_t step) const;

 private:
  std::map<std::string, double> values_;
};

// numerator / denominator, or 0 when the denominator is not positive: the
// mean of an empty set, as every logged ratio treats it.
inline double ratio_or_zero(double numerator, double denominator) {
  return denominator > 0 ? numerator / denominator : 0.0;
}

}  // namespace r1kit
