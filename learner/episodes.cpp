#include "learner/episodes.h"

namespace r1kit {

std::vector<MultiTurnTrajectory> sample_episodes(
    RolloutWorkers& rollout, const std::vector<Task>& tasks,
    const std::vector<std::vector<int64_t>>& prompts, const Tokenizer& tokenizer,
    const SamplingParams& params, const EpisodeOptions& options, int64_t first_prompt_index) {
  if (options.environment) {
    MultiTurnOptions turn_options{.max_completion_tokens = params.max_new_tokens,
                                  .max_turns = options.max_turns,
                                  .context_length = options.context_length};
    return generate_multi_turn(rollout, *options.environment, tasks, prompts, tokenizer, params,
                               turn_options, first_prompt_index);
  }
  std::vector<MultiTurnTrajectory> episodes;
  for (Completion& completion : rollout.generate(prompts, params, first_prompt_index)) {
    episodes.push_back(
        single_turn_trajectory(std::move(completion), tokenizer, !params.stop_strings.empty()));
  }
  return episodes;
}

std::vector<Sample> episode_samples(const std::vector<Task>& tasks,
                                    const std::vector<std::string>& rendered,
                                    const std::vector<MultiTurnTrajectory>& episodes,
                                    int64_t first_prompt_index) {
  std::vector<Sample> samples;
  samples.reserve(episodes.size());
  for (const auto& episode : episodes) {
    const auto p = static_cast<size_t>(episode.prompt_index - first_prompt_index);
    samples.push_back(
        {rendered[p], episode.text, episode.token_ids, tasks[p].reference, tasks[p].metadata});
  }
  return samples;
}

BatchScores score_episodes(const RewardSet& rewards, ThreadPool& reward_pool,
                           const std::vector<Sample>& samples,
                           const std::vector<MultiTurnTrajectory>& episodes) {
  BatchScores scores = rewards.score(samples, reward_pool);
  for (size_t i = 0; i < episodes.size(); ++i) {
    if (episodes[i].environment_reward) scores.totals[i] += *episodes[i].environment_reward;
  }
  return scores;
}

bool reward_is_correct(const BatchScores& scores, size_t sample, size_t reward) {
  const auto& value = scores.values[sample][reward];
  return scores.outcomes[sample][reward] == RewardOutcome::kOk && value && *value >= 1.0 - 1e-9;
}

}  // namespace r1kit
