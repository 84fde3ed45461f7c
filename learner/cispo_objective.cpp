// CISPO (MiniMax-M1, 2025): REINFORCE with a clipped, stop-gradient importance
// weight, so no token's gradient is dropped by the clip. TRL's form (loss_type
// "cispo"): the weight is clipped from above only, at epsilon_high itself
// (ScaleRL's epsilon_max; TRL recommends 5.0).
#include "learner/grpo_config.h"
#include "learner/policy_objective.h"

namespace r1kit {
namespace {

// -sg(min(r, epsilon_high)) * A * logp per token.
PolicyObjectiveTerms cispo(const PolicyObjectiveInputs& in) {
  const double cap = in.config->effective_epsilon_high();
  const at::Tensor ratio = in.ratio.detach();
  PolicyObjectiveTerms terms;
  terms.per_token_loss = -ratio.clamp_max(cap) * in.advantages * in.logprobs;
  terms.clipped_high = (ratio > cap) & (in.advantages > 0);  // TRL's cispo_clip_ratio
  return terms;
}

}  // namespace

REGISTER_POLICY_OBJECTIVE("cispo", cispo);

}  // namespace r1kit
