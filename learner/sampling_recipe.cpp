#include "learner/sampling_recipe.h"

namespace r1kit {

SamplingParams rollout_sampling_params(const GrpoConfig& grpo) {
  SamplingParams params;
  params.temperature = grpo.temperature;
  params.top_p = grpo.top_p;
  params.top_k = grpo.top_k;
  params.min_p = grpo.min_p;
  params.repetition_penalty = grpo.repetition_penalty;
  params.banned_token_ids = grpo.banned_token_ids;
  params.mask_padded_vocab = grpo.mask_padded_vocab;
  params.logits_processors = grpo.logits_processors;
  params.max_new_tokens = grpo.max_completion_length;
  params.stop_strings = grpo.stop_strings;
  params.n = grpo.num_generations;
  return params;
}

}  // namespace r1kit
