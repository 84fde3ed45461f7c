// The learner of the RL stages: update(samples) runs the epochs and
// mini-batches of one step — micro-batches spread over the CPU lanes, each
// distinct prompt once, completions that add nothing to the loss left out, the
// policy loss + beta KL to a frozen reference (+ a value model's loss for PPO),
// gradients summed over ranks, the optimiser step published to the rollout
// engine. It owns the optimiser, the lanes and the reference. Trainer thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "learner/distributed.h"
#include "learner/grpo_config.h"
#include "learner/hidden_logprobs.h"
#include "learner/learner_lanes.h"
#include "learner/micro_batch.h"
#include "learner/optimizer.h"
#include "learner/policy_loss.h"
#include "learner/run_checkpoint.h"
#include "learner/step_metrics.h"
#include "learner/trainer_config.h"
#include "rollout/engine.h"

namespace r1kit {

class ValueModel;

// A copy of `model` with its own tensors and no gradients: the frozen
// reference policy, LoRA adapters merged in. (Constructing it draws from
// torch's generator.)
Transformer frozen_copy(Transformer& model);

// Whether GRPO's reference must be a frozen_copy of `policy`: beta > 0, unless
// the policy has LoRA adapters, no modules_to_save and no ref_model_sync_steps;
// then the reference is the base itself (adapters off), with no copy.
bool reference_needs_copy(Transformer& policy, const GrpoConfig& config);

// What one update() did, over every rank.
struct LearnerStats {
  PolicyLossSums sums;                // token sums behind the loss-side means
  double grad_norm = 0.0;             // mean over the optimiser steps, before clipping
  double learning_rate = 0.0;         // the last optimiser step's
  double skipped_updates = 0.0;       // optimiser steps skipped for a non-finite gradient
  int64_t skipped_updates_total = 0;  // skipped optimiser steps over the run so far
  double skipped_completions = 0.0;   // share of this rank's completions left out of the learner
  // The rollout correction's metrics over the step's samples, each measured once
  // against pi_old (see Learner::update).
  RolloutCorrectionSums rollout_correction;

  // kl, entropy, ratio_mean, clip_ratio/*, grad_norm, learning_rate,
  // skipped_updates, train/nonfinite_skipped (0/1), train/nonfinite_skipped_total,
  // learner/skipped_completions, rollout_corr/*.
  void write(StepMetrics& metrics) const;
};

class Learner {
 public:
  // Trains weights->model, publishing each optimiser step through `weights`
  // so the rollout engine samples from the new weights. `reference` (a
  // frozen_copy of the policy) is null when beta is 0 or when the policy's
  // LoRA base is the reference (reference_needs_copy). `value_model` (PPO)
  // may be null; it must outlive the learner.
  Learner(std::shared_ptr<PolicyWeights> weights, Transformer reference, at::Device device,
          const GrpoConfig& config, const TrainerConfig& trainer, const OptimizerConfig& optimizer,
          Distributed& distributed, ValueModel* value_model);
  ~Learner();

  // num_iterations epochs over `samples` (this rank's, whole groups in order),
  // num_mini_batches optimiser steps each. Every rank calls it the same number
  // of times (the collectives line up). Under grpo.rollout_correction with more
  // than one epoch or mini-batch, one no-grad forward over `samples` first gives
  // pi_old (the learner's log-probs before any step); with one of each, the
  // forward's own detached log-probs are pi_old. The rollout_corr metrics compare
  // pi_old with the rollout's log-probs over the first epoch; without a stored
  // pi_old (mode none, or one mini-batch), over the forwards that precede the
  // first optimiser step: the first mini-batch.
  LearnerStats update(const std::vector<TrainingSample>& samples);

  // Frees the last update's gradients (they stay in .grad until then); the
  // trainer calls it before each rollout so they take no memory while it runs.
  void release_gradients();

  // Copies the policy into the reference every grpo.ref_model_sync_steps steps.
  void sync_reference(int64_t step);

  // Checkpoints: the optimiser (optimizer/) and a synced reference (reference/).
  void add_to(RunCheckpoint& checkpoint);
  void restore(const std::filesystem::path& checkpoint_folder);

 private:
  struct MiniBatchPlan;
  void update_mini_batch(const std::vector<TrainingSample>& samples, size_t begin, size_t end,
                         LearnerStats& stats, double& skipped_rows, bool measure_rollout);
  // Fills each sample's learner_old_logprobs from one no-grad forward.
  void compute_learner_old_logprobs(std::vector<TrainingSample>& samples);
  MiniBatchPlan plan_mini_batch(const std::vector<TrainingSample>& samples, size_t begin,
                                size_t end, double& skipped_rows);
  std::vector<at::Tensor> micro_batch_gradients(MiniBatchPlan& plan, int64_t index);
  at::Tensor target_hidden(Transformer& network, const MiniBatchPlan& plan, int64_t index);
  HiddenLogprobs target_logprobs(Transformer& network, const MiniBatchPlan& plan, int64_t index,
                                 const at::Tensor& targets, bool with_entropy);
  // Steps the optimiser; a skipped step is logged with what was not finite in
  // `plan`, and the optimiser's stop gets that cause added.
  void step_optimizer(LearnerStats& stats, const MiniBatchPlan& plan);

  std::shared_ptr<PolicyWeights> weights_;
  Transformer policy_;
  at::Device device_;
  const GrpoConfig& config_;
  const TrainerConfig& trainer_;
  Distributed& distributed_;
  ValueModel* value_model_;
  Transformer reference_;   // frozen; null when beta is 0 or the LoRA base is the reference
  bool reference_is_base_;  // beta > 0 with no copy: the policy with adapters off
  LearnerLanes lanes_;      // micro-batches side by side, one per core on CPU
  std::unique_ptr<Optimizer> optimizer_;
  int64_t optimizer_steps_ = 0;  // this update's, for the mean gradient norm
};

}  // namespace r1kit
