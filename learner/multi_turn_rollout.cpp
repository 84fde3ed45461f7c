#include "learner/multi_turn_rollout.h"

#include <algorithm>
#include <string>

#include "common/seed.h"

namespace r1kit {

MultiTurnTrajectory single_turn_trajectory(Completion completion, const Tokenizer& tokenizer,
                                           bool stop_strings) {
  MultiTurnTrajectory trajectory;
  trajectory.prompt_index = completion.prompt_index;
  trajectory.sample_index = completion.sample_index;
  trajectory.model_tokens = static_cast<int64_t>(completion.token_ids.size());
  trajectory.model_turns = 1;
  trajectory.token_ids = std::move(completion.token_ids);
  trajectory.logprobs = std::move(completion.logprobs);
  trajectory.text = stop_strings
                        ? tokenizer.decode(trajectory.token_ids, /*skip_special_tokens=*/true)
                        : std::move(completion.text);
  trajectory.finish_reason = completion.finish_reason;
  return trajectory;
}

std::vector<MultiTurnTrajectory> generate_multi_turn(
    RolloutWorkers& rollout, const Environment& environment, const std::vector<Task>& tasks,
    const std::vector<std::vector<int64_t>>& prompts, const Tokenizer& tokenizer,
    const SamplingParams& params, const MultiTurnOptions& options, int64_t first_prompt_index) {
  TORCH_CHECK(tasks.size() == prompts.size(), "generate_multi_turn: ", tasks.size(), " tasks but ",
              prompts.size(), " prompts");
  const int64_t budget = std::min(params.max_new_tokens, options.max_completion_tokens);
  SamplingParams turn_params = params;
  turn_params.max_new_tokens = budget;
  std::vector<Completion> completions = rollout.generate(prompts, turn_params, first_prompt_index);

  std::vector<MultiTurnTrajectory> trajectories(completions.size());
  // (trajectory, its latest model turn) awaiting the environment.
  std::vector<std::pair<size_t, Completion>> answered;
  for (size_t i = 0; i < completions.size(); ++i) {
    trajectories[i].prompt_index = completions[i].prompt_index;
    trajectories[i].sample_index = completions[i].sample_index;
    answered.emplace_back(i, std::move(completions[i]));
  }
  for (int64_t turn = 1; !answered.empty(); ++turn) {
    std::vector<size_t> continuing;
    for (auto& [i, completion] : answered) {
      MultiTurnTrajectory& trajectory = trajectories[i];
      const int64_t room = budget - static_cast<int64_t>(trajectory.token_ids.size());
      // A continuation draws up to the longest room of its batch; a shorter room cuts it here.
      if (static_cast<int64_t>(completion.token_ids.size()) > room) {
        completion.token_ids.resize(static_cast<size_t>(std::max<int64_t>(room, 0)));
        completion.logprobs.resize(completion.token_ids.size());
        completion.finish_reason = FinishReason::kLength;
      }
      trajectory.token_ids.insert(trajectory.token_ids.end(), completion.token_ids.begin(),
                                  completion.token_ids.end());
      trajectory.logprobs.insert(trajectory.logprobs.end(), completion.logprobs.begin(),
                                 completion.logprobs.end());
      trajectory.observation_mask.insert(trajectory.observation_mask.end(),
                                         completion.token_ids.size(), 0);
      trajectory.model_tokens += static_cast<int64_t>(completion.token_ids.size());
      ++trajectory.model_turns;
      trajectory.finish_reason = completion.finish_reason;
      // The environment sees the sampled turn as its ids decode, stop string
      // included (the engine cuts it from Completion::text).
      std::string text = tokenizer.decode(completion.token_ids, /*skip_special_tokens=*/true);
      const int64_t local_prompt = trajectory.prompt_index - first_prompt_index;
      StepResult result =
          environment.step(tasks[static_cast<size_t>(local_prompt)], trajectory.turns, text);
      trajectory.turns.push_back({text, false});
      if (result.reward) trajectory.environment_reward = result.reward;
      // The model ending its sequence ends the episode, whatever the environment would answer.
      const bool ended = !completion.token_ids.empty() && tokenizer.eos_id() &&
                         completion.token_ids.back() == *tokenizer.eos_id();
      if (result.done || ended || completion.finish_reason == FinishReason::kLength) continue;
      if (options.max_turns > 0 && trajectory.model_turns >= options.max_turns) continue;
      std::vector<int64_t> observation = tokenizer.encode(result.observation);
      const int64_t length = static_cast<int64_t>(trajectory.token_ids.size() + observation.size());
      const int64_t prompt_length =
          static_cast<int64_t>(prompts[static_cast<size_t>(local_prompt)].size());
      // No room for the observation and one more model token: the budget is spent.
      if (length >= budget ||
          (options.context_length > 0 && prompt_length + length + 1 >= options.context_length)) {
        trajectory.finish_reason = FinishReason::kLength;
        continue;
      }
      trajectory.token_ids.insert(trajectory.token_ids.end(), observation.begin(),
                                  observation.end());
      trajectory.logprobs.insert(trajectory.logprobs.end(), observation.size(), 0.0f);
      trajectory.observation_mask.insert(trajectory.observation_mask.end(), observation.size(), 1);
      trajectory.turns.push_back({result.observation, true});
      continuing.push_back(i);
    }
    answered.clear();
    if (continuing.empty()) break;

    std::vector<std::vector<int64_t>> next_prompts;
    int64_t longest_room = 0;
    for (size_t i : continuing) {
      const MultiTurnTrajectory& trajectory = trajectories[i];
      std::vector<int64_t> sequence =
          prompts[static_cast<size_t>(trajectory.prompt_index - first_prompt_index)];
      sequence.insert(sequence.end(), trajectory.token_ids.begin(), trajectory.token_ids.end());
      next_prompts.push_back(std::move(sequence));
      longest_room =
          std::max(longest_room, budget - static_cast<int64_t>(trajectory.token_ids.size()));
    }
    SamplingParams next = params;
    next.n = 1;
    next.max_new_tokens = longest_room;
    next.seed = static_cast<int64_t>(
        make_rng(static_cast<uint64_t>(params.seed), "turn/" + std::to_string(turn))() >> 1);
    // Trajectories are numbered apart from other ranks' (whose prompts start elsewhere).
    std::vector<Completion> next_turns =
        rollout.generate(next_prompts, next, first_prompt_index * params.n);
    for (size_t k = 0; k < continuing.size(); ++k)
      answered.emplace_back(continuing[k], std::move(next_turns[k]));
  }
  for (MultiTurnTrajectory& trajectory : trajectories)
    trajectory.text = render_turns(trajectory.turns).text;
  return trajectories;
}

}  // namespace r1kit
