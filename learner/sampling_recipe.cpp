#include "learner/sampling_recipe.h"

namespace r1kit {

SamplingParams rollout_sampling_params(const GrpoConfig& grpo) {
  SamplingParams params;
  params.temperature = grpo.temperature;
  params.top_p = grpo.top_p;
  params.top_k = grpo.top_k;
  params.min_p = grpo.min_p;
  params.max_new_tokens = grpo.max_completion_length;
  params.stop_strings = grpo.stop_strings;
  return params;
}

}  // namespace r1kit
