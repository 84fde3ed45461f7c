// Advantage estimators: group-relative ones from outcome rewards (GRPO, RLOO,
// REINFORCE++, and any registered by name) and GAE from per-token rewards and a
// value model (PPO), plus the reward statistics logged each step. Pure functions
// on tensors; any thread (register estimators at start-up). Statistics are over
// the tensors given: for batch-level statistics in a distributed run, pass the
// all-gathered rewards (P*G floats) and keep this rank's slice.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/registry.h"
#include "learner/micro_batch.h"

namespace r1kit {

class ValueModel;

// An outcome-reward estimator: rewards (P, G) float64, one row per prompt, and
// the recipe's scale_rewards and eps -> advantages (P, G).
using GroupAdvantageEstimator = std::function<at::Tensor(
    const at::Tensor& rewards, const std::string& scale_rewards, double eps)>;

// One generation round of a step as an estimator sees it. With DAPO's dynamic
// sampling a step has several rounds; each is estimated on its own rewards.
struct AdvantageRound {
  at::Tensor rewards;      // (ranks * P * G) float32: every rank's totals, rank order
  int64_t group_size = 0;  // G
  int64_t first = 0;       // this rank's first completion in `rewards`
  // This rank's samples of the round: samples[begin + k] is completion
  // first + kept[k] of `rewards` (groups DAPO dropped are not kept).
  size_t begin = 0;
  std::vector<int64_t> kept;
};

// Sets the advantage of every sample of a round: TrainingSample::advantage, or
// token_advantages (with returns and old_values) for per-token estimators.
// Built once per run; used from the trainer thread.
class AdvantageEstimator {
 public:
  virtual ~AdvantageEstimator() = default;
  virtual void assign(const AdvantageRound& round, std::vector<TrainingSample>& samples) = 0;
};

// What an estimator may use, from the recipe's grpo section and the stage.
struct AdvantageOptions {
  std::string scale_rewards = "group";  // grpo: group | batch | none
  double eps = 1e-4;                    // added to a std before dividing
  ValueModel* value_model = nullptr;    // PPO's value model; null without one
};

using AdvantageEstimatorFactory =
    std::function<std::unique_ptr<AdvantageEstimator>(const AdvantageOptions& options)>;

// The estimators a recipe can name in grpo.adv_estimator (verl's
// register_adv_est): each built-in registers itself with one line,
//   R1KIT_REGISTER(advantage_estimator_registry(), "rloo",
//                  group_relative("rloo", rloo_advantages));
// and a plugin adds its own the same way.
Registry<AdvantageEstimatorFactory>& advantage_estimator_registry();

// An estimator from outcome rewards alone: `function` applied to each round's
// rewards of every rank, grouped (P, G); this rank keeps its slice.
class GroupRelativeEstimator : public AdvantageEstimator {
 public:
  GroupRelativeEstimator(std::string name, GroupAdvantageEstimator function,
                         AdvantageOptions options);
  // rewards (P*G) float, each group contiguous -> (P*G) float32.
  at::Tensor advantages(const at::Tensor& rewards, int64_t group_size) const;
  void assign(const AdvantageRound& round, std::vector<TrainingSample>& samples) override;

 private:
  std::string name_;
  GroupAdvantageEstimator function_;
  AdvantageOptions options_;
};

// The factory of a GroupRelativeEstimator around `function`.
AdvantageEstimatorFactory group_relative(std::string name, GroupAdvantageEstimator function);

// Adds a group-relative estimator (the registry line above, as a call).
// A taken name (the built-ins included) throws Error(kConfig).
void register_group_advantage_estimator(const std::string& name, GroupAdvantageEstimator estimator);

// Outcome-reward advantages, one per completion. rewards (P*G) float, the G
// completions of each prompt contiguous. Returns (P*G) float32.
//   grpo (Shao et al. 2024, TRL): r - mean of its group, then divided by
//     std + eps where std is the group's (scale_rewards "group", unbiased like
//     torch.std), the whole batch's ("batch"), or not divided ("none", Dr. GRPO,
//     Liu et al. 2025).
//   rloo (Ahmadian et al. 2024): r_i - mean of the other G-1 of its group.
//   reinforce_plus_plus (Hu 2025, verl's outcome form): (r - batch mean) /
//     (batch std + eps); groups play no part.
// scale_rewards only affects grpo. An unknown estimator, or one that is not
// group-relative (gae), throws Error(kConfig); shape mistakes fail TORCH_CHECK.
at::Tensor group_advantages(const at::Tensor& rewards, int64_t group_size,
                            const std::string& estimator, const std::string& scale_rewards,
                            double eps = 1e-4);

// Generalised advantage estimation (Schulman et al. 2016) as verl computes it:
// tokens outside `mask` (tool observations, padding) are skipped, neither
// bootstrapping nor accumulating. token_rewards, values, mask: (B, T) float.
// returns = advantages + values (before whitening), the value-model target;
// advantages are then whitened over the masked tokens (mean 0, unbiased std 1).
struct GaeResult {
  at::Tensor advantages;  // (B, T) float32, zero outside the mask
  at::Tensor returns;     // (B, T) float32
};
GaeResult gae(const at::Tensor& token_rewards, const at::Tensor& values, const at::Tensor& mask,
              double gamma, double lam);

// The reward statistics of one step's batch, with TRL's metric names.
struct RewardGroupStats {
  double reward = 0.0;                // mean reward
  double reward_std = 0.0;            // mean over groups of the group's std (TRL's reward_std)
  double reward_batch_std = 0.0;      // std of all rewards together (unbiased)
  double frac_reward_zero_std = 0.0;  // fraction of groups whose rewards are all equal
};
RewardGroupStats reward_group_stats(const at::Tensor& rewards, int64_t group_size);

// (P) bool: true for groups whose rewards are not all equal, the groups DAPO's
// dynamic sampling keeps (verl filter_groups: std > 0).
at::Tensor groups_with_reward_spread(const at::Tensor& rewards, int64_t group_size);

}  // namespace r1kit
