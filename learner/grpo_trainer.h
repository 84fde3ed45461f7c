// The RL loop of the grpo and ppo stages. step() is docs/architecture.md's
// "One RL step", each line a call into the part that owns it: the rollout
// collector (environment, template, rollout, rewards), the advantage
// estimator, the learner, the value model for PPO. Evaluation, metrics and
// checkpoints run on schedule; --resume continues exactly. One trainer per
// process, driven from one thread.
#pragma once

#include <memory>

#include "common/run_dir.h"
#include "common/tensorboard.h"
#include "common/thread_pool.h"
#include "environments/environment.h"
#include "environments/prompt_template.h"
#include "learner/advantages.h"
#include "learner/async_rollouts.h"
#include "learner/distributed.h"
#include "learner/evaluation.h"
#include "learner/learner.h"
#include "learner/recipe.h"
#include "learner/rollout_collector.h"
#include "learner/value_model.h"
#include "policy/model_source.h"
#include "rewards/reward_set.h"
#include "rollout/workers.h"

namespace r1kit {

struct TrainOptions;

class GrpoTrainer {
 public:
  GrpoTrainer(const Recipe& recipe, RunDir& run_dir, Distributed& distributed);
  ~GrpoTrainer();

  // Runs steps until trainer.max_steps, from the newest checkpoint when `resume`.
  void train(bool resume);

  // One RL step; returns its metrics line. Public for tests.
  nlohmann::json step(int64_t step_index);
  EvaluationResult evaluate();

  Transformer& policy() { return policy_.model; }
  bool is_ppo() const { return static_cast<bool>(value_model_); }

 private:
  void log_line(const nlohmann::json& line);
  void run_evaluation(int64_t step_index);
  void save_checkpoint(int64_t step_index);
  int64_t restore_checkpoint();
  void save_final();
  // Asynchronous rollouts: starts the producer at `step_index` when it has
  // not started, hands it the weights after the previous step, and takes
  // this step's batch, its metrics and staleness into `metrics`.
  RolloutBatch take_async_batch(int64_t step_index, StepMetrics& metrics);
  // The policy's weights now, copied (LoRA adapters merged): a version for
  // the asynchronous rollouts' own copy.
  NamedWeights weights_snapshot();
  // --resume with asynchronous rollouts: the batches the checkpoint sampled
  // ahead, the producer's copy of the restored weights, the producer started.
  void restore_async(const nlohmann::json& state, int64_t step, const std::string& folder);

  const Recipe& recipe_;
  RunDir& run_dir_;
  Distributed& distributed_;
  LoadedPolicy policy_;
  std::shared_ptr<PolicyWeights> weights_;
  std::unique_ptr<RolloutWorkers> rollout_;
  std::unique_ptr<Environment> environment_;
  std::unique_ptr<PromptTemplate> prompt_template_;
  std::unique_ptr<RewardSet> rewards_;
  std::unique_ptr<ThreadPool> reward_pool_;
  size_t accuracy_reward_ = 0;
  std::unique_ptr<RolloutCollector> collector_;
  std::unique_ptr<ValueModel> value_model_;  // PPO only
  std::unique_ptr<Learner> learner_;
  std::unique_ptr<AdvantageEstimator> advantages_;
  std::unique_ptr<TensorBoardWriter> tensorboard_;
  // Asynchronous rollouts only (trainer.max_staleness > 0): the producer's
  // copy of the policy and its engines; rollout_ then serves evaluation.
  std::shared_ptr<PolicyWeights> rollout_weights_;
  std::unique_ptr<RolloutWorkers> async_workers_;
  std::unique_ptr<Distributed> rollout_group_;  // the producer's collectives
  std::unique_ptr<AsyncRollouts> async_;
  int64_t learner_threads_ = 0;        // the learner's cores while rollouts run beside it; 0 = all
  bool warned_no_eval_tasks_ = false;  // the no-held-out-tasks warning was given
  int64_t published_through_ = 0;      // the newest learner step handed to async_
};

// The registered driver of stages "grpo" and "ppo" (the same loop with a
// value model and GAE advantages; Schulman et al. 2017).
// The checks that span sections of an RL recipe (grpo or ppo), once, before
// anything loads; `world_size` ranks share its prompts. Throws config errors.
void validate_rl_recipe(const Recipe& recipe, int world_size);

void run_grpo_stage(const Recipe& recipe, RunDir& run_dir, const TrainOptions& options);

}  // namespace r1kit
