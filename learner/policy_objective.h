// Policy objectives: the per-token policy-gradient loss of the GRPO family
// from the importance ratio, the log-probs and the advantages, before the KL,
// entropy and rollout-correction terms and the aggregation. A registry of small
// functions, one REGISTER_POLICY_OBJECTIVE line each, named by grpo.loss_type
// (or grpo.policy_objective). Pure functions; any thread.
//
//   r1kit::PolicyObjectiveTerms reinforce(const r1kit::PolicyObjectiveInputs& in) {
//     return {.per_token_loss = -in.advantages * in.logprobs};
//   }
//   REGISTER_POLICY_OBJECTIVE("reinforce", reinforce);
#pragma once

#include <ATen/ATen.h>

#include <functional>

#include "common/registry.h"

namespace r1kit {

struct GrpoConfig;

struct PolicyObjectiveInputs {
  at::Tensor logprobs;    // (B, T) current policy, requires grad
  at::Tensor ratio;       // (B, T) pi / pi_old, token or GSPO sequence form; carries logprobs' grad
  at::Tensor advantages;  // (B, 1) or (B, T), detached
  const GrpoConfig* config = nullptr;
};

struct PolicyObjectiveTerms {
  at::Tensor per_token_loss;  // (B, T), differentiable
  // (B, T) bool, for the clip metrics; undefined = nowhere.
  at::Tensor clipped_low;   // bounded below with A < 0 (TRL clip_ratio/low_mean)
  at::Tensor clipped_high;  // bounded above with A > 0 (TRL clip_ratio/high_mean)
  at::Tensor dual_clipped;  // under the dual clip, A < 0 (verl pg_clipfrac_lower)
};

using PolicyObjective = std::function<PolicyObjectiveTerms(const PolicyObjectiveInputs&)>;

// The objective registry: REGISTER_POLICY_OBJECTIVE lines add to it. Built in:
// clipped_surrogate (PPO's, policy_objective.cpp) and cispo (cispo_objective.cpp).
Registry<PolicyObjective>& policy_objective_registry();

}  // namespace r1kit

// Registers `objective` (callable as a PolicyObjective) as `name` at load time.
#define REGISTER_POLICY_OBJECTIVE(name, objective) \
  R1KIT_REGISTER(::r1kit::policy_objective_registry(), name, objective)
