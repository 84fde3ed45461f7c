// Lines 1-5 of one RL step: the environment's tasks are rendered by the prompt
// template and encoded, the rollout workers sample G completions per prompt
// (a multi-turn environment answering each turn), and the rewards score them on
// a pool. With DAPO's dynamic sampling, rounds repeat until every rank has full
// groups. It fills the rollout side of the step's metrics. Trainer thread.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "common/thread_pool.h"
#include "environments/environment.h"
#include "environments/prompt_template.h"
#include "learner/advantages.h"
#include "learner/distributed.h"
#include "learner/micro_batch.h"
#include "learner/recipe.h"
#include "learner/step_metrics.h"
#include "rewards/reward_set.h"
#include "rollout/workers.h"

namespace r1kit {

// What one step collected on this rank.
struct RolloutBatch {
  std::vector<TrainingSample> samples;  // grouped by prompt; advantages set by the estimator
  std::vector<AdvantageRound> rounds;   // one per generation round
  // Completions for samples.jsonl (rank 0 only) and the sample each one is.
  std::vector<nlohmann::json> logged;
  std::vector<size_t> logged_samples;

  // The logged completions with their samples' advantages: call after the estimator ran.
  std::vector<nlohmann::json> logged_completions() const;
};

class RolloutCollector {
 public:
  // Everything is borrowed and must outlive the collector.
  RolloutCollector(const Recipe& recipe, Distributed& distributed, RolloutWorkers& rollout,
                   Environment& environment, const PromptTemplate& prompt_template,
                   const Tokenizer& tokenizer, const RewardSet& rewards, ThreadPool& reward_pool,
                   size_t accuracy_reward, int64_t context_length);

  RolloutBatch collect(int64_t step, StepMetrics& metrics);

  // The generator of the environment's draws, saved and restored with checkpoints.
  std::mt19937_64& environment_rng() { return environment_rng_; }

 private:
  struct Round;
  struct CompletionTally;
  Round sample_round(int64_t step, int64_t round_index);
  void keep_round(Round& round, int64_t step, RolloutBatch& batch, CompletionTally& tally);

  const Recipe& recipe_;
  Distributed& distributed_;
  RolloutWorkers& rollout_;
  Environment& environment_;
  const PromptTemplate& prompt_template_;
  const Tokenizer& tokenizer_;
  const RewardSet& rewards_;
  ThreadPool& reward_pool_;
  size_t accuracy_reward_;
  int64_t prompts_local_;   // this rank's prompts per round
  int64_t first_local_;     // this rank's first prompt in the round's global draw
  int64_t context_length_;  // the policy's: multi-turn episodes end there
  std::mt19937_64 environment_rng_;
};

}  // namespace r1kit
