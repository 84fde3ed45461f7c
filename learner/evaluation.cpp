#include "learner/evaluation.h"

#include "common/error.h"
#include "learner/episodes.h"
#include "learner/prompt_encoding.h"
#include "learner/sampling_recipe.h"

namespace r1kit {

std::map<std::string, double> EvaluationResult::metrics() const {
  std::map<std::string, double> out = {{"eval/accuracy", accuracy},
                                       {"eval/reward", reward},
                                       {"eval/mean_length", mean_length},
                                       {"eval/tasks", static_cast<double>(tasks)}};
  if (pass_at_k >= 0) out["eval/pass@" + std::to_string(k)] = pass_at_k;
  return out;
}

EvaluationOptions recipe_evaluation_options(const GrpoConfig& grpo, const TrainerConfig& trainer,
                                            int64_t seed, const Environment& environment,
                                            int64_t context_length) {
  EvaluationOptions options;
  options.max_tasks = trainer.eval_samples;
  options.max_prompt_length = grpo.max_prompt_length;
  options.pass_at_k = trainer.pass_at_k;
  options.sampling = rollout_sampling_params(grpo);
  options.seed = seed;
  if (environment.multi_turn()) {
    options.environment = &environment;
    options.max_turns = grpo.max_turns;
    options.context_length = context_length;
  }
  return options;
}

std::string no_eval_tasks_warning(const std::string& environment_name) {
  return "environment \"" + environment_name +
         "\" has no held-out tasks, so there is no evaluation (no eval/ metrics); for a jsonl "
         "data set, set environment.options.eval_fraction (e.g. 0.05) or eval_path";
}

size_t find_reward(const RewardSet& rewards, const std::string& name, const std::string& key_path,
                   const std::string& source) {
  std::string known;
  for (size_t k = 0; k < rewards.size(); ++k) {
    if (rewards.spec(k).metric_name() == name) return k;
    known += (known.empty() ? "" : ", ") + rewards.spec(k).metric_name();
  }
  throw_config_error(source + ": " + key_path + ": no reward named \"" + name +
                     "\" (rewards: " + known + ")");
}

size_t find_accuracy_reward(const RewardSet& rewards, const std::string& name,
                            const std::string& source) {
  if (rewards.size() == 0)
    throw_config_error(source + ": rewards: the RL stages need at least one reward");
  if (name.empty()) return 0;
  return find_reward(rewards, name, "trainer.accuracy_reward", source);
}

namespace {

EpisodeOptions episode_options(const EvaluationOptions& options) {
  return {.environment = options.environment,
          .max_turns = options.max_turns,
          .context_length = options.context_length};
}

}  // namespace

EvaluationResult evaluate_policy(RolloutWorkers& rollout, const std::vector<Task>& all_tasks,
                                 const PromptTemplate& prompt_template, const Tokenizer& tokenizer,
                                 const RewardSet& rewards, ThreadPool& reward_pool,
                                 const EvaluationOptions& options) {
  std::vector<Task> tasks = all_tasks;
  if (options.max_tasks > 0 && static_cast<int64_t>(tasks.size()) > options.max_tasks)
    tasks.resize(options.max_tasks);
  EvaluationResult result;
  result.tasks = static_cast<int64_t>(tasks.size());
  if (tasks.empty()) return result;
  std::vector<std::string> rendered;
  auto prompts = encode_prompts(tasks, prompt_template, tokenizer, options.max_prompt_length,
                                &rendered, options.add_special_tokens);

  SamplingParams greedy = options.sampling;
  greedy.temperature = 0.0;
  greedy.n = 1;
  greedy.seed = 0;
  auto completions =
      sample_episodes(rollout, tasks, prompts, tokenizer, greedy, episode_options(options));
  auto samples = episode_samples(tasks, rendered, completions);
  BatchScores scores = score_episodes(rewards, reward_pool, samples, completions);
  double correct = 0, reward = 0, length = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    bool ok = reward_is_correct(scores, i, options.accuracy_reward);
    correct += ok;
    reward += scores.totals[i];
    length += static_cast<double>(completions[i].token_ids.size());
    if (result.examples.size() < 4) {
      result.examples.push_back({{"prompt", samples[i].prompt},
                                 {"completion", samples[i].completion},
                                 {"reference", samples[i].reference},
                                 {"reward", scores.totals[i]},
                                 {"correct", ok}});
    }
  }
  const double n = static_cast<double>(samples.size());
  result.accuracy = correct / n;
  result.reward = reward / n;
  result.mean_length = length / n;

  if (options.pass_at_k > 0) {
    SamplingParams sampled = options.sampling;
    sampled.n = options.pass_at_k;
    sampled.seed = options.seed;
    auto k_completions =
        sample_episodes(rollout, tasks, prompts, tokenizer, sampled, episode_options(options));
    auto k_samples = episode_samples(tasks, rendered, k_completions);
    BatchScores k_scores = score_episodes(rewards, reward_pool, k_samples, k_completions);
    double solved = 0;
    for (size_t task = 0; task < tasks.size(); ++task) {
      bool any = false;
      for (int64_t s = 0; s < options.pass_at_k; ++s)
        any = any ||
              reward_is_correct(k_scores, task * options.pass_at_k + s, options.accuracy_reward);
      solved += any;
    }
    result.pass_at_k = solved / static_cast<double>(tasks.size());
    result.k = options.pass_at_k;
  }
  return result;
}

}  // namespace r1kit
