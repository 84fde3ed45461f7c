// The `rejection_sample` stage, R1's step between its two RL rounds: draws
// tasks from the recipe's environment, samples K completions for each from the
// policy, scores them with the recipe's rewards, and keeps the accepted ones as
// SFT JSONL ({"prompt","response"}) for the next `sft` stage. One process.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/config.h"
#include "rollout/sampling_params.h"

namespace r1kit {

struct RejectionSampleConfig {
  int64_t num_prompts = 1000;       // training tasks drawn from the environment
  int64_t prompts_per_batch = 32;   // tasks sampled together (times sampling.n sequences)
  int64_t max_prompt_length = 512;  // prompt tokens kept (left-truncated)
  SamplingParams sampling = {
      .n = 8};                    // K = sampling.n; sampling.seed is replaced by the recipe's seed
  double min_total_reward = 1.0;  // a completion is accepted when its weighted total reaches this
  std::vector<std::string>
      required_rewards;         // metric names that must also each score >= 1 (e.g. math_answer)
  int64_t max_per_prompt = 1;   // accepted completions written per task; 0 = all
  bool deduplicate = true;      // write an accepted text once per task
  bool keep_truncated = false;  // accept completions that ran out of tokens
  std::string output_file;      // "" = <output_dir>/sft.jsonl

  void visit(ConfigVisitor& v);
};

}  // namespace r1kit
