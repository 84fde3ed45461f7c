// Held-out evaluation of a policy on an environment's eval split: greedy
// accuracy (the share of tasks whose accuracy reward is >= 1), mean reward,
// and optionally pass@k from k sampled completions per task. Used by the RL
// stages on schedule and by `r1kit eval`. Runs on the calling thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/thread_pool.h"
#include "environments/environment.h"
#include "environments/prompt_template.h"
#include "learner/grpo_config.h"
#include "learner/trainer_config.h"
#include "policy/tokenizer.h"
#include "rewards/reward_set.h"
#include "rollout/sampling_params.h"
#include "rollout/workers.h"

namespace r1kit {

struct EvaluationOptions {
  int64_t max_tasks = 0;            // held-out tasks used; 0 = all
  int64_t max_prompt_length = 512;  // prompt tokens kept (left-truncated)
  int64_t pass_at_k = 0;            // sampled completions per task for pass@k; 0 = off
  bool add_special_tokens = true;   // prompts get the post-processor's tokens (encode_prompts)
  // Budget, stop strings, temperature, filters and penalties (rollout_sampling_params):
  // the greedy run sets temperature 0 and n 1, the pass@k run n = pass_at_k and seed.
  SamplingParams sampling;
  int64_t seed = 0;
  size_t accuracy_reward = 0;  // index into the reward set of the reward that means "correct"
  const Environment* environment =
      nullptr;            // multi-turn: it answers each turn (generate_multi_turn); null = one turn
  int64_t max_turns = 0;  // multi-turn: model turns per episode; 0 = until done or out of budget
  int64_t context_length = 0;  // multi-turn: prompt + episode tokens; 0 = no limit
};

struct EvaluationResult {
  int64_t tasks = 0;
  double accuracy = 0.0;                 // greedy
  double reward = 0.0;                   // greedy, mean weighted total
  double pass_at_k = -1.0;               // -1 when not measured
  int64_t k = 0;                         // the k of pass_at_k
  double mean_length = 0.0;              // greedy completion tokens
  std::vector<nlohmann::json> examples;  // a few greedy completions with their scores

  // {"eval/accuracy": .., "eval/reward": .., "eval/pass@8": .., "eval/mean_length": ..}
  // (pass@<k> with the k used, when measured)
  std::map<std::string, double> metrics() const;
};

// The options an RL recipe implies: budgets and sampling from `grpo`, task
// count and pass@k from `trainer`, and the environment for multi-turn ones.
// `accuracy_reward` is left for the caller (find_accuracy_reward).
EvaluationOptions recipe_evaluation_options(const GrpoConfig& grpo, const TrainerConfig& trainer,
                                            int64_t seed, const Environment& environment,
                                            int64_t context_length);

// The warning for an evaluation without tasks: which environment, and how
// to give it a held-out split.
std::string no_eval_tasks_warning(const std::string& environment_name);

// The index of the reward whose metric name is `name`; a config error naming
// `source`, `key_path` and the rewards there are when there is none.
size_t find_reward(const RewardSet& rewards, const std::string& name, const std::string& key_path,
                   const std::string& source);

// The index of the reward named `name` in `rewards` ("" = 0); a config error
// naming `source` when there is none.
size_t find_accuracy_reward(const RewardSet& rewards, const std::string& name,
                            const std::string& source);

EvaluationResult evaluate_policy(RolloutWorkers& rollout, const std::vector<Task>& tasks,
                                 const PromptTemplate& prompt_template, const Tokenizer& tokenizer,
                                 const RewardSet& rewards, ThreadPool& reward_pool,
                                 const EvaluationOptions& options);

}  // namespace r1kit
