// The RL loop of the grpo stage, DESIGN.md "One RL step" line by line:
// environment -> template -> rollout (G samples per prompt; multi-turn
// environments answer each turn, learner/multi_turn_rollout.h) -> rewards ->
// group-relative advantages -> micro-batched policy loss (+ beta KL to a
// frozen reference) -> all-reduced gradients -> optimiser step, which the
// rollout engine sees at once (colocated: the same tensors). Evaluation,
// metrics and checkpoints on schedule; --resume continues exactly (PPO's
// critic and its optimiser included).
// One trainer per process, driven from one thread.
#pragma once

#include <memory>
#include <random>

#include "common/run_dir.h"
#include "common/tensorboard.h"
#include "common/thread_pool.h"
#include "environments/environment.h"
#include "environments/prompt_template.h"
#include "learner/distributed.h"
#include "learner/evaluation.h"
#include "learner/learner_lanes.h"
#include "learner/micro_batch.h"
#include "learner/optimizer.h"
#include "learner/policy_loss.h"
#include "learner/recipe.h"
#include "policy/model_source.h"
#include "policy/scalar_head.h"
#include "rewards/reward_set.h"
#include "rollout/workers.h"

namespace r1kit {

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
  bool is_ppo() const { return static_cast<bool>(critic_); }

 private:
  struct Rollout;
  Rollout collect_rollout(int64_t step_index);
  std::map<std::string, double> update(std::vector<TrainingSample>& samples);
  void estimate_values(std::vector<TrainingSample>& samples, size_t begin,
                       const std::vector<float>& rewards);
  void save_checkpoint(int64_t step_index);
  int64_t restore_checkpoint();

  const Recipe& recipe_;
  RunDir& run_dir_;
  Distributed& distributed_;
  LoadedPolicy policy_;
  Transformer reference_{nullptr};
  std::shared_ptr<PolicyWeights> weights_;
  std::unique_ptr<RolloutWorkers> rollout_;
  std::unique_ptr<Environment> environment_;
  std::unique_ptr<PromptTemplate> prompt_template_;
  std::unique_ptr<RewardSet> rewards_;
  std::unique_ptr<ThreadPool> reward_pool_;
  std::unique_ptr<LearnerLanes> lanes_;  // micro-batches side by side, one per core on CPU
  std::unique_ptr<Optimizer> optimizer_;
  Transformer critic_{nullptr};     // PPO's value model: a backbone ...
  ScalarHead value_head_{nullptr};  // ... and its v_head
  std::unique_ptr<Optimizer> critic_optimizer_;
  std::unique_ptr<TensorBoardWriter> tensorboard_;
  std::mt19937_64 environment_rng_;
  size_t accuracy_reward_ = 0;
};

// The registered drivers of stages "grpo" and "ppo" (the same loop with a
// value model and GAE advantages; Schulman et al. 2017).
void run_grpo_stage(const Recipe& recipe, RunDir& run_dir, const struct TrainOptions& options);

}  // namespace r1kit
