// The SamplingParams a recipe's grpo section implies for its rollouts: the
// one place training, evaluation and rejection sampling turn sampling knobs
// into engine parameters. Functions only.
#pragma once

#include "learner/grpo_config.h"
#include "rollout/sampling_params.h"

namespace r1kit {

// Temperature, filters, completion budget and stop strings of `grpo`; n and
// seed are left for the caller.
SamplingParams rollout_sampling_params(const GrpoConfig& grpo);

}  // namespace r1kit
