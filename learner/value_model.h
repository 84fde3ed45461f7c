// PPO's value model (Schulman et al. 2017): a transformer backbone with a
// scalar value head, started from the policy's Hugging Face folder with a fresh
// head, and its own AdamW. It gives each round's rollout values and GAE
// advantages (the "gae" advantage estimator) and the clipped value loss of each
// learner micro-batch; it saves and resumes with the run. Trainer thread only,
// except loss(), which the learner's lanes call side by side.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "learner/distributed.h"
#include "learner/grpo_config.h"
#include "learner/micro_batch.h"
#include "learner/optimizer.h"
#include "learner/policy_loss.h"
#include "learner/run_checkpoint.h"
#include "learner/step_metrics.h"
#include "policy/scalar_head.h"
#include "policy/tokenizer.h"
#include "policy/transformer.h"

namespace r1kit {

class ValueModel {
 public:
  // Loads the backbone of `model_folder` with a new value head on `device` in
  // `dtype`; its optimiser will make `total_optimizer_steps` steps.
  ValueModel(const std::filesystem::path& model_folder, at::Device device, at::ScalarType dtype,
             const GrpoConfig& config, const OptimizerConfig& optimizer,
             int64_t total_optimizer_steps);
  ~ValueModel();

  // GAE (gae(), per token, whitened over the round) for samples[begin, end),
  // whose outcome rewards are `rewards` (one each, on the last completion
  // token): sets their token_advantages, returns and old_values.
  void estimate(std::vector<TrainingSample>& samples, size_t begin, size_t end,
                const std::vector<float>& rewards);

  // The backbone's parameters, then the head's.
  std::vector<at::Tensor> parameters();

  // The clipped value loss of one padded micro-batch: tokens and attention
  // (B, L) on the device, mask (B, L-1) the policy loss's. Thread-safe.
  ValueLossOutput loss(const at::Tensor& tokens, const at::Tensor& attention,
                       const MicroBatch& batch, const at::Tensor& mask,
                       const LossNormalizer& normalizer);
  // Adds one micro-batch's loss value and token counts to the step's metrics, in order.
  void tally(double loss, double tokens, double clipped);

  void zero_grad();
  // Sums the gradients over ranks and steps the optimiser.
  void step(Distributed& distributed);
  // critic/vf_loss (per optimiser step) and critic/vf_clipfrac of the step; restarts the tallies.
  void write(StepMetrics& metrics);

  // Checkpoints: critic/ (backbone and head) and critic_optimizer/.
  void add_to(RunCheckpoint& checkpoint);
  void restore(const std::filesystem::path& checkpoint_folder);
  // The final value model as an HF folder with v_head.summary.*: <run>/final/critic.
  void save_final(const std::filesystem::path& run_folder, const Tokenizer& tokenizer);

 private:
  const GrpoConfig& config_;
  at::Device device_;
  Transformer backbone_{nullptr};
  ScalarHead head_{nullptr};
  std::unique_ptr<Optimizer> optimizer_;
  double loss_sum_ = 0, tokens_ = 0, clipped_ = 0;
  int64_t steps_ = 0;
};

}  // namespace r1kit
