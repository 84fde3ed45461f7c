#include "learner/policy_objective.h"

#include "learner/grpo_config.h"

namespace r1kit {

Registry<PolicyObjective>& policy_objective_registry() {
  static Registry<PolicyObjective> registry("policy objective");
  return registry;
}

namespace {

// The clipped surrogate (PPO, Schulman et al. 2017) per token:
//   -min(r A, clip(r, 1 - epsilon, 1 + epsilon_high) A)        (DAPO clip-higher)
//   for A < 0 and clip_ratio_c > 0: min(that, -clip_ratio_c A)  (dual clip, Ye et al. 2020)
PolicyObjectiveTerms clipped_surrogate(const PolicyObjectiveInputs& in) {
  const GrpoConfig& config = *in.config;
  const at::Tensor& advantages = in.advantages;
  const double eps_low = config.epsilon;
  const double eps_high = config.effective_epsilon_high();
  at::Tensor unclipped = -advantages * in.ratio;
  at::Tensor clipped = -advantages * in.ratio.clamp(1.0 - eps_low, 1.0 + eps_high);
  at::Tensor per_token = at::maximum(unclipped, clipped);  // (B, T)
  PolicyObjectiveTerms terms;
  if (config.clip_ratio_c > 0.0) {
    // A very off-policy token with A < 0 would otherwise push its loss up
    // without bound; cap it at -c * A.
    at::Tensor dual_bound = -advantages * config.clip_ratio_c;
    terms.dual_clipped = (per_token.detach() > dual_bound) & (advantages < 0);
    per_token = at::where(advantages < 0, at::minimum(per_token, dual_bound), per_token);
  }
  terms.per_token_loss = per_token;
  const at::Tensor ratio = in.ratio.detach();
  terms.clipped_low = (ratio < 1.0 - eps_low) & (advantages < 0);
  terms.clipped_high = (ratio > 1.0 + eps_high) & (advantages > 0);
  return terms;
}

}  // namespace

REGISTER_POLICY_OBJECTIVE("clipped_surrogate", clipped_surrogate);

}  // namespace r1kit
