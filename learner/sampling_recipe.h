// The one place an RL recipe's sampling knobs (its `grpo` section, TRL's names)
// become the rollout engine's SamplingParams: training rollouts and evaluation
// both start from it, so a new knob is one field here and one in each struct.
// A pure function of the recipe.
#pragma once

#include "learner/grpo_config.h"
#include "rollout/sampling_params.h"

namespace r1kit {

// temperature, top_p, top_k, min_p, repetition_penalty, banned_token_ids,
// mask_padded_vocab, logits_processors and stop_strings as they are;
// max_new_tokens = max_completion_length; n = num_generations. seed stays 0:
// the caller sets it per generation round.
SamplingParams rollout_sampling_params(const GrpoConfig& grpo);

}  // namespace r1kit
