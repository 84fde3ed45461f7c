// The recipe's `trainer` section for the RL stages (grpo, ppo): how many steps,
// how many prompts per step, batching of rollout and learner, and the schedule
// of logging, evaluation and checkpoints. Hugging Face TrainingArguments names
// where they exist. Plain data: read once, read-only after.
#pragma once

#include <cstdint>
#include <string>

#include "common/config.h"

namespace r1kit {

struct TrainerConfig {
  int64_t max_steps = 100;  // RL steps: rollout, rewards, update (HF)
  int64_t prompts_per_step =
      16;  // prompts per step on all ranks together; each gets num_generations samples
  int64_t max_tokens_per_microbatch =
      16384;  // learner micro-batch budget: rows * longest row (padding included)
  int64_t rollout_batch_size =
      64;  // sequences the rollout engine decodes together (continuous batching)
  int64_t num_rollout_workers = 0;  // rollout engines sharing the weights; 0 = one per core on CPU
                                    // (see RolloutWorkers), 1 on GPU
  int64_t num_reward_workers = 0;   // threads scoring rewards; 0 = one per core
  int64_t log_completions = 2;      // completions per step written to samples.jsonl; 0 = none
  int64_t eval_steps = 0;       // evaluate every this many steps; 0 = at the start and the end only
  int64_t eval_samples = 0;     // held-out tasks used per evaluation; 0 = all of them
  int64_t pass_at_k = 0;        // also sample k completions per held-out task for pass@k; 0 = off
  std::string accuracy_reward;  // reward whose value >= 1 counts as correct; "" = the first reward
  int64_t save_steps = 0;       // checkpoint every this many steps; 0 = at the end only (HF)
  int64_t save_total_limit = 2;  // newest checkpoints kept; 0 = keep all (HF)
  bool tensorboard = true;       // also write TensorBoard event files into the run folder
  // Run the learner's policy and reference forwards under bf16 autocast (CUDA, or
  // CPU with AVX512-BF16/AMX); weights, gradients and the loss stay in the model's
  // dtype; float32 model only. false = plain forwards (HF TrainingArguments.bf16).
  bool bf16 = false;
  // Learner forward of the GRPO family: each distinct prompt of a micro-batch
  // once, its completions attending to its keys and values
  // (policy/shared_prefix.h); false = one padded row per completion (TRL). Same
  // log-probs and gradients either way; PPO's policy and value model use padded rows.
  bool shared_prompt_forward = true;
  // Activation checkpointing per decoder layer: each layer's activations are
  // recomputed in the backward instead of kept (about a third more compute,
  // a fraction of the activation memory); same gradients (HF).
  bool gradient_checkpointing = false;
  // Rollout engine dtype: "float32" (logprobs equal the learner's to ~1e-6),
  // "bfloat16" (weights cast once per update; faster decode on CPUs with
  // AVX512-BF16 or AMX and on GPUs; logprobs then differ from a float32
  // learner, which grpo.rollout_correction accounts for) or "auto": bfloat16
  // where it is the fast path, float32 elsewhere (rollout/rollout_dtype.h),
  // resolved when the recipe loads (vLLM's dtype).
  std::string rollout_dtype = "auto";
  // Asynchronous rollouts: how many steps the rollouts may run ahead of the
  // learner. 0 = on-policy (sample, then learn). K > 0: step s's batch is
  // sampled with the weights after step s - 1 - K, while the learner updates
  // on earlier batches (verl's one-step-off policy for K = 1); the schedule is
  // fixed, so a seed fixes the run and --resume continues it exactly.
  int64_t max_staleness = 0;
  // CPU threads of the rollout engines while rollouts run asynchronously;
  // 0 = half the cores (at least one).
  int64_t rollout_threads = 0;
  // CPU threads of the learner while rollouts run asynchronously; 0 = every
  // core, shared with the rollout engines while they sample (measured faster
  // on 2 cores than splitting them, as generation is the shorter side).
  int64_t learner_threads = 0;

  void visit(ConfigVisitor& v);
};

}  // namespace r1kit
