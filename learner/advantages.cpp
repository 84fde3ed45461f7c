#include "learner/advantages.h"

#include <cmath>
#include <mutex>
#include <vector>

#include "common/error.h"

namespace r1kit {
namespace {

// rewards (P*G) -> (P, G) float64 on the CPU-or-device of the input.
at::Tensor grouped(const at::Tensor& rewards, int64_t group_size, const char* caller) {
  TORCH_CHECK(rewards.dim() == 1, caller, ": rewards must be (P*G), got ", rewards.sizes());
  TORCH_CHECK(group_size >= 1, caller, ": group_size must be >= 1, got ", group_size);
  TORCH_CHECK(rewards.numel() % group_size == 0, caller, ": ", rewards.numel(),
              " rewards are not whole groups of ", group_size);
  return rewards.to(at::kDouble).reshape({-1, group_size});
}

// GRPO (Shao et al. 2024) as TRL computes it; "none" is Dr. GRPO (Liu et al. 2025).
at::Tensor grpo_advantages(const at::Tensor& r, const std::string& scale_rewards, double eps) {
  at::Tensor centred = r - r.mean(1, /*keepdim=*/true);
  if (scale_rewards == "group") {
    TORCH_CHECK(r.size(1) >= 2, "group_advantages: the group std needs group_size >= 2, got ",
                r.size(1));
    return centred / (r.std(1, /*unbiased=*/true, /*keepdim=*/true) + eps);
  }
  if (scale_rewards == "batch") {
    TORCH_CHECK(r.numel() >= 2, "group_advantages: the batch std needs >= 2 rewards, got ",
                r.numel());
    return centred / (r.std(/*unbiased=*/true) + eps);
  }
  if (scale_rewards == "none") return centred;
  throw_config_error("scale_rewards: unknown value \"" + scale_rewards +
                     "\"; expected one of: group, batch, none");
}

// RLOO, the leave-one-out baseline (Ahmadian et al. 2024).
at::Tensor rloo_advantages(const at::Tensor& r, const std::string&, double) {
  const int64_t group_size = r.size(1);
  TORCH_CHECK(group_size >= 2, "group_advantages: rloo needs group_size >= 2, got ", group_size);
  // r_i - (sum - r_i) / (G - 1): the baseline never sees the sample it judges.
  at::Tensor others_mean = (r.sum(1, /*keepdim=*/true) - r) / static_cast<double>(group_size - 1);
  return r - others_mean;
}

// REINFORCE++ (Hu 2025), verl's outcome form: batch whitening, no groups.
at::Tensor reinforce_plus_plus_advantages(const at::Tensor& r, const std::string&, double eps) {
  TORCH_CHECK(r.numel() >= 2, "group_advantages: batch whitening needs >= 2 rewards, got ",
              r.numel());
  return (r - r.mean()) / (r.std(/*unbiased=*/true) + eps);
}

}  // namespace

Registry<AdvantageEstimatorFactory>& advantage_estimator_registry() {
  static Registry<AdvantageEstimatorFactory> registry("advantage estimator");
  return registry;
}

R1KIT_REGISTER(advantage_estimator_registry(), "grpo", group_relative("grpo", grpo_advantages));
R1KIT_REGISTER(advantage_estimator_registry(), "rloo", group_relative("rloo", rloo_advantages));
R1KIT_REGISTER(advantage_estimator_registry(), "reinforce_plus_plus",
               group_relative("reinforce_plus_plus", reinforce_plus_plus_advantages));

GroupRelativeEstimator::GroupRelativeEstimator(std::string name, GroupAdvantageEstimator function,
                                               AdvantageOptions options)
    : name_(std::move(name)), function_(std::move(function)), options_(std::move(options)) {}

at::Tensor GroupRelativeEstimator::advantages(const at::Tensor& rewards, int64_t group_size) const {
  at::Tensor r = grouped(rewards, group_size, "group_advantages");  // (P, G) float64
  at::Tensor advantages = function_(r, options_.scale_rewards, options_.eps);
  TORCH_CHECK(advantages.sizes() == r.sizes(), "adv_estimator ", name_, " returned shape ",
              advantages.sizes(), " for rewards ", r.sizes());
  return advantages.reshape({-1}).to(at::kFloat);
}

void GroupRelativeEstimator::assign(const AdvantageRound& round,
                                    std::vector<TrainingSample>& samples) {
  at::Tensor all = advantages(round.rewards, round.group_size);  // (ranks * P * G)
  for (size_t k = 0; k < round.kept.size(); ++k)
    samples[round.begin + k].advantage = all[round.first + round.kept[k]].item<float>();
}

AdvantageEstimatorFactory group_relative(std::string name, GroupAdvantageEstimator function) {
  return [name = std::move(name), function = std::move(function)](const AdvantageOptions& options) {
    return std::make_unique<GroupRelativeEstimator>(name, function, options);
  };
}

void register_group_advantage_estimator(const std::string& name,
                                        GroupAdvantageEstimator estimator) {
  advantage_estimator_registry().add(name, group_relative(name, std::move(estimator)));
}

at::Tensor group_advantages(const at::Tensor& rewards, int64_t group_size,
                            const std::string& estimator, const std::string& scale_rewards,
                            double eps) {
  std::unique_ptr<AdvantageEstimator> made = advantage_estimator_registry().get(
      estimator, "adv_estimator")({.scale_rewards = scale_rewards, .eps = eps});
  auto* group = dynamic_cast<GroupRelativeEstimator*>(made.get());
  if (!group) {
    throw_config_error("adv_estimator: \"" + estimator +
                       "\" is not computed from outcome rewards alone (gae takes per-token "
                       "rewards and values: call gae())");
  }
  return group->advantages(rewards, group_size);
}

GaeResult gae(const at::Tensor& token_rewards, const at::Tensor& values, const at::Tensor& mask,
              double gamma, double lam) {
  TORCH_CHECK(token_rewards.dim() == 2, "gae: token_rewards must be (B, T), got ",
              token_rewards.sizes());
  TORCH_CHECK(values.sizes() == token_rewards.sizes() && mask.sizes() == token_rewards.sizes(),
              "gae: token_rewards ", token_rewards.sizes(), ", values ", values.sizes(),
              " and mask ", mask.sizes(), " must have one shape");
  const int64_t rows = token_rewards.size(0);
  const int64_t steps = token_rewards.size(1);
  at::Tensor r = token_rewards.to(at::kCPU, at::kDouble).contiguous();
  at::Tensor v = values.to(at::kCPU, at::kDouble).contiguous();
  at::Tensor m = mask.to(at::kCPU, at::kDouble).contiguous();
  at::Tensor adv = at::zeros({rows, steps}, r.options());
  const double* rp = r.data_ptr<double>();
  const double* vp = v.data_ptr<double>();
  const double* mp = m.data_ptr<double>();
  double* ap = adv.data_ptr<double>();
  for (int64_t b = 0; b < rows; ++b) {
    double next_value = 0.0;  // V of the next token in the mask; 0 past the end
    double running = 0.0;     // the GAE sum carried backwards
    for (int64_t t = steps - 1; t >= 0; --t) {
      const int64_t i = b * steps + t;
      const double delta = rp[i] + gamma * next_value - vp[i];
      const double candidate = delta + gamma * lam * running;
      // A token outside the mask (a tool observation) passes the carry through
      // unchanged, so the TD chain links the model's tokens on either side.
      next_value = mp[i] * vp[i] + (1.0 - mp[i]) * next_value;
      running = mp[i] * candidate + (1.0 - mp[i]) * running;
      ap[i] = running;
    }
  }
  at::Tensor returns = adv + v;
  const double count = m.sum().item<double>();
  TORCH_CHECK(count >= 2.0, "gae: whitening needs >= 2 tokens in the mask, got ", count);
  const double mean = (adv * m).sum().item<double>() / count;
  // Unbiased, as verl's masked_whiten.
  const double variance = ((adv - mean).square() * m).sum().item<double>() / (count - 1.0);
  at::Tensor whitened = (adv - mean) * (1.0 / std::sqrt(variance + 1e-8)) * m;
  at::Device device = token_rewards.device();
  return {whitened.to(device, at::kFloat), returns.to(device, at::kFloat)};
}

RewardGroupStats reward_group_stats(const at::Tensor& rewards, int64_t group_size) {
  at::Tensor r = grouped(rewards, group_size, "reward_group_stats");  // (P, G)
  RewardGroupStats stats;
  stats.reward = r.mean().item<double>();
  stats.reward_std = group_size >= 2 ? r.std(1, /*unbiased=*/true).mean().item<double>() : 0.0;
  stats.reward_batch_std = r.numel() >= 2 ? r.std(/*unbiased=*/true).item<double>() : 0.0;
  at::Tensor spread = groups_with_reward_spread(rewards, group_size);
  stats.frac_reward_zero_std = 1.0 - spread.to(at::kDouble).mean().item<double>();
  return stats;
}

at::Tensor groups_with_reward_spread(const at::Tensor& rewards, int64_t group_size) {
  at::Tensor r = grouped(rewards, group_size, "groups_with_reward_spread");  // (P, G)
  return r.amax(1) != r.amin(1);
}

}  // namespace r1kit
