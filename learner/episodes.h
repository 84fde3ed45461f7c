// Episodes for the RL stages, evaluation and rejection sampling: sample them
// (one engine call, or the multi-turn driver when an environment answers each
// turn), turn them into reward samples, and score them with the recipe's
// rewards plus the environment's own final reward. Functions only.
#pragma once

#include <cstdint>
#include <vector>

#include "learner/multi_turn_rollout.h"
#include "rewards/reward_set.h"

namespace r1kit {

struct EpisodeOptions {
  const Environment* environment =
      nullptr;            // multi-turn: answers each turn; null = one turn per episode
  int64_t max_turns = 0;  // multi-turn: model turns per episode; 0 = until done or out of budget
  int64_t context_length = 0;  // multi-turn: prompt + episode tokens; 0 = no limit
};

// params.n episodes per prompt of `tasks` (`prompts` are their encodings), in
// (prompt, sample) order; prompt indices start at `first_prompt_index`.
std::vector<MultiTurnTrajectory> sample_episodes(
    RolloutWorkers& rollout, const std::vector<Task>& tasks,
    const std::vector<std::vector<int64_t>>& prompts, const Tokenizer& tokenizer,
    const SamplingParams& params, const EpisodeOptions& options, int64_t first_prompt_index = 0);

// One reward sample per episode; `rendered` holds the prompt texts of `tasks`.
std::vector<Sample> episode_samples(const std::vector<Task>& tasks,
                                    const std::vector<std::string>& rendered,
                                    const std::vector<MultiTurnTrajectory>& episodes,
                                    int64_t first_prompt_index = 0);

// The recipe's rewards; an environment's own final reward adds to the totals.
BatchScores score_episodes(const RewardSet& rewards, ThreadPool& reward_pool,
                           const std::vector<Sample>& samples,
                           const std::vector<MultiTurnTrajectory>& episodes);

// True when reward `reward` ran and scored `sample` at least 1 (correct).
bool reward_is_correct(const BatchScores& scores, size_t sample, size_t reward);

}  // namespace r1kit
