#include "learner/reward_tally.h"

#include <algorithm>
#include <cmath>

#include "learner/episodes.h"

namespace r1kit {

RewardTally::RewardTally(size_t rewards)
    : rewards_(rewards), sums_(kPerReward * rewards + kShared, 0.0), first_failures_(rewards) {}

void RewardTally::add(const BatchScores& scores,
                      const std::vector<MultiTurnTrajectory>& trajectories,
                      size_t accuracy_reward) {
  names_ = scores.names;
  for (size_t n = 0; n < scores.values.size(); ++n) {
    for (size_t k = 0; k < rewards_; ++k) {
      double* entry = &sums_[kPerReward * k];
      if (const auto& value = scores.values[n][k]) {
        entry[0] += *value;
        entry[1] += *value * *value;
        entry[2] += 1;
      } else {
        entry[3] += 1;
      }
    }
    double* shared = &sums_[kPerReward * rewards_];
    shared[0] += reward_is_correct(scores, n, accuracy_reward);
    shared[1] += 1;
    if (trajectories[n].environment_reward) {
      shared[2] += *trajectories[n].environment_reward;
      shared[3] += 1;
    }
  }
  for (size_t k = 0; k < rewards_; ++k) {
    sums_[kPerReward * k + 4] += static_cast<double>(scores.errors[k]);
    sums_[kPerReward * k + 5] += static_cast<double>(scores.timeouts[k]);
    sums_[kPerReward * k + 6] += static_cast<double>(scores.skipped[k]);
    if (first_failures_[k].empty()) first_failures_[k] = scores.first_failures[k];
  }
}

void RewardTally::all_reduce(Distributed& distributed) {
  at::Tensor packed = at::tensor(sums_, at::kDouble);
  distributed.all_reduce_sum(packed);
  std::copy(packed.data_ptr<double>(), packed.data_ptr<double>() + packed.numel(), sums_.begin());
}

void RewardTally::write(StepMetrics& metrics) const {
  for (size_t k = 0; k < rewards_ && k < names_.size(); ++k) {
    const double* entry = &sums_[kPerReward * k];
    const double count = entry[2];
    const double mean = count > 0 ? entry[0] / count : 0.0;
    // Sample standard deviation, as BatchScores::metrics.
    const double variance =
        count > 1 ? std::max(entry[1] - count * mean * mean, 0.0) / (count - 1) : 0.0;
    metrics.set("rewards/" + names_[k] + "/mean", mean);
    metrics.set("rewards/" + names_[k] + "/std", std::sqrt(variance));
    metrics.set("reward/" + names_[k] + "/not_applicable", entry[3]);
    metrics.set("reward/" + names_[k] + "/errors", entry[4]);
    metrics.set("reward/" + names_[k] + "/timeouts", entry[5]);
    metrics.set("reward/" + names_[k] + "/skipped", entry[6]);
  }
  const double* shared = &sums_[kPerReward * rewards_];
  metrics.set("accuracy", shared[1] > 0 ? shared[0] / shared[1] : 0.0);
  if (shared[3] > 0) metrics.set("rewards/environment/mean", shared[2] / shared[3]);
}

void RewardTally::check_failures(const RewardSet& rewards, int64_t step) const {
  std::vector<RewardFailures> failures(rewards_);
  for (size_t k = 0; k < rewards_; ++k) {
    const double* entry = &sums_[kPerReward * k];
    failures[k].failed = static_cast<int64_t>(entry[4] + entry[5] + entry[6]);
    failures[k].samples = static_cast<int64_t>(entry[2] + entry[3]);
    failures[k].first_failure = first_failures_[k];
  }
  rewards.check_failures(failures, "step " + std::to_string(step));
}

}  // namespace r1kit
