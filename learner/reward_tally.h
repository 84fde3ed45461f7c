// The sums behind a step's per-reward metrics and accuracy, over every
// generation round of the step: rewards/<name>/{mean,std}, the reward/<name>/
// {errors,timeouts,skipped,not_applicable} counts, accuracy and
// rewards/environment/mean. all_reduce() makes them cover every rank, so the
// logged means are global (as with one rank and the whole batch), and so does
// the fail-fast check on them. One thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "learner/distributed.h"
#include "learner/multi_turn_rollout.h"
#include "learner/step_metrics.h"
#include "rewards/reward_set.h"

namespace r1kit {

class RewardTally {
 public:
  // `rewards`: the number of rewards in the recipe's reward set.
  explicit RewardTally(size_t rewards);

  // Adds one round's scores; `accuracy_reward` indexes the reward that means "correct".
  void add(const BatchScores& scores, const std::vector<MultiTurnTrajectory>& trajectories,
           size_t accuracy_reward);
  // Sums the tallies of every rank.
  void all_reduce(Distributed& distributed);
  void write(StepMetrics& metrics) const;
  // After all_reduce(): throws RewardSet::check_failures' error when a reward
  // failed on its max_failure_fraction of the step's samples, on every rank.
  void check_failures(const RewardSet& rewards, int64_t step) const;

 private:
  // Per reward: sum, sum of squares, applicable, not applicable, errors,
  // timeouts, skipped.
  static constexpr size_t kPerReward = 7;
  // Then: correct, samples, environment reward sum, environment rewards.
  static constexpr size_t kShared = 4;
  size_t rewards_;
  std::vector<double> sums_;
  std::vector<std::string> names_;
  std::vector<std::string> first_failures_;  // (K) this rank's first of the step; "" = none
};

}  // namespace r1kit
