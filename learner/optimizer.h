// The learner's optimiser: AdamW (Loshchilov & Hutter 2019) over two parameter
// groups (decayed / not decayed, as Hugging Face's Trainer splits them), a
// warm-up-then-decay learning rate, global-norm gradient clipping, a guard that
// skips non-finite updates, and exact save/load of its state for resume.
// Holds references to the caller's parameters (it updates them in place); one
// thread at a time. Gradients are expected already all-reduced across ranks.
#pragma once

#include <ATen/ATen.h>
#include <torch/optim/adamw.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/config.h"
#include "learner/lr_schedule.h"

namespace r1kit {

// The `optimizer` section of a recipe, with Hugging Face TrainingArguments names.
struct OptimizerConfig {
  // Peak learning rate, reached after warm-up (TRL GRPOConfig's default).
  double learning_rate = 1e-6;
  // AdamW's decoupled weight decay, on the decay group only (HF).
  double weight_decay = 0.0;
  // First- and second-moment decay rates, each in [0, 1) (HF).
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  // Added to the denominator (HF).
  double adam_epsilon = 1e-8;
  // After warm-up: constant | cosine (to 0) | linear (to 0) at the last step (HF; default linear).
  std::string lr_scheduler_type = "linear";
  // Linear warm-up from 0 over this many steps; 0 = use warmup_ratio (HF).
  int64_t warmup_steps = 0;
  // Warm-up as a fraction of the total steps, rounded up, when warmup_steps is 0 (HF).
  double warmup_ratio = 0.0;
  // Clip the global gradient L2 norm to this; 0 = no clipping (HF).
  double max_grad_norm = 1.0;
  // Stop the run after this many skipped (NaN/Inf gradient) steps in a row; 0 = never.
  int64_t max_consecutive_nonfinite = 5;

  void visit(ConfigVisitor& v);
};

struct OptimizerStepStats {
  double grad_norm = 0.0;      // global L2 norm of the gradients before clipping (may be NaN/Inf)
  double learning_rate = 0.0;  // the rate of this step (also when skipped)
  bool skipped = false;        // the norm was not finite: no update, gradients dropped
};

class Optimizer {
 public:
  // decay_parameters get config.weight_decay, no_decay_parameters none (pass
  // Transformer::decay_parameters() / no_decay_parameters()). total_steps is the
  // number of step() calls the run will make, for the schedule.
  Optimizer(std::vector<at::Tensor> decay_parameters, std::vector<at::Tensor> no_decay_parameters,
            OptimizerConfig config, int64_t total_steps);

  // One update with the accumulated gradients: global norm, then either a skip
  // (norm not finite: gradients are dropped, the skip counted) or clipping and
  // an AdamW step at the schedule's rate. Every call advances the schedule, so
  // the rate at step n never depends on earlier skips; AdamW's own bias
  // correction counts applied updates only. Throws Error(kRuntime) on the
  // max_consecutive_nonfinite-th skip in a row.
  OptimizerStepStats step();

  // Drops every parameter's gradient (sets it undefined).
  void zero_grad();

  // step() calls so far: the schedule position.
  int64_t step_count() const { return step_count_; }
  int64_t consecutive_skips() const { return consecutive_skips_; }
  // Skipped steps over the whole run (kept across save() and load()).
  int64_t skipped_total() const { return skipped_total_; }
  // The learning rate the next step() will use.
  double next_learning_rate() const;
  const OptimizerConfig& config() const { return config_; }
  const LrSchedule& schedule() const { return schedule_; }

  // Writes the state to `folder` (created when absent): optimizer.safetensors
  // (each parameter's exp_avg and exp_avg_sq) and optimizer.json (AdamW steps,
  // schedule position, skip counters). Loading it into an optimiser over the same
  // parameter shapes continues bit-identically. Throws Error(kIo) on failure.
  void save(const std::filesystem::path& folder) const;
  // Replaces the state with the one in `folder`. Throws Error(kData) when the
  // parameter groups or shapes differ from this optimiser's, Error(kIo) when the
  // files are missing.
  void load(const std::filesystem::path& folder);

 private:
  OptimizerConfig config_;
  LrSchedule schedule_;
  // The AdamW of the shard that holds `parameter` (its state lives there).
  torch::optim::AdamW& shard_of(const at::Tensor& parameter) const;

  // Up to this many parameters (on CPU) AdamW steps in one shard per thread.
  static constexpr int64_t kShardedParameters = int64_t{1} << 23;

  std::vector<std::vector<at::Tensor>>
      groups_;  // [0] decayed, [1] not: the order of the norm, save() and load()
  std::vector<std::unique_ptr<torch::optim::AdamW>>
      shards_;  // disjoint parameters, each with both groups' options
  std::unordered_map<c10::TensorImpl*, size_t> shard_of_;  // parameter -> index into shards_
  int64_t step_count_ = 0;
  int64_t consecutive_skips_ = 0;
  int64_t skipped_total_ = 0;
};

}  // namespace r1kit
