// Checkpoints of a training run: checkpoints/step-N/ holds the policy as a
// Hugging Face folder (model/; a PEFT adapter folder when the policy has LoRA), the optimiser state
// (optimizer/), optional extra models with their heads and optimisers (e.g. the reference, PPO's
// value model), and trainer_state.json (step, generator
// states, data position, the recipe). Written to step-N.tmp and renamed, the
// newest `keep` kept. Rank 0 writes; every rank reads. Functions only.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>

#include "learner/optimizer.h"
#include "policy/scalar_head.h"
#include "policy/tokenizer.h"
#include "policy/transformer.h"

namespace r1kit {

struct RunCheckpoint {
  Transformer policy{nullptr};
  const Tokenizer* tokenizer = nullptr;             // saved into model/ beside the weights
  const Optimizer* optimizer = nullptr;             // may be null (no optimiser state)
  std::map<std::string, Transformer> extra_models;  // name -> model, saved as <name>/
  std::map<std::string, ScalarHead>
      extra_heads;  // name of an extra model -> its head, saved in <name>/ too
  std::map<std::string, const Optimizer*>
      extra_optimizers;  // name -> optimiser state, saved as <name>/
  nlohmann::json state;  // trainer_state.json: at least {"step": N}
};

// Writes checkpoints/step-<state.step>/ under `run_folder` and keeps the newest
// `keep` (0 = all). Returns the final folder.
std::filesystem::path save_run_checkpoint(const std::filesystem::path& run_folder,
                                          const RunCheckpoint& checkpoint, int64_t keep);

// The newest complete checkpoint folder of a run, or nullopt.
std::optional<std::filesystem::path> latest_run_checkpoint(const std::filesystem::path& run_folder);

// latest_run_checkpoint for --resume: without a checkpoint it logs that the
// run starts from step 0 and returns nullopt.
std::optional<std::filesystem::path> resume_checkpoint(const std::filesystem::path& run_folder);

// Writes the finished model with its tokenizer as an HF folder, <run_folder>/final
// (`head` too when given), or as a PEFT adapter folder when it has LoRA
// adapters; returns the folder.
std::filesystem::path save_final_model(const std::filesystem::path& run_folder, Transformer& model,
                                       const Tokenizer& tokenizer, ScalarHead head = nullptr);

// Copies the weights of the HF folder `folder` into `model` in place (same
// architecture), so tensors shared with a rollout engine stay shared; for a
// model with LoRA, the adapters of the PEFT folder `folder`.
void load_weights_into(Transformer& model, const std::filesystem::path& folder);
// The same for a backbone and its scalar head (a value model); a folder without
// the head is a data error.
void load_weights_into(Transformer& model, ScalarHead& head, const std::filesystem::path& folder);

// Text forms of a std generator and torch's CPU generator, for trainer_state.json.
std::string save_rng(const std::mt19937_64& rng);
void restore_rng(std::mt19937_64& rng, const std::string& text);
std::string save_torch_rng();
void restore_torch_rng(const std::string& text);

// The trainer_state.json of a checkpoint folder: an object with an integer
// "step". Anything else (invalid JSON, a missing step) is a data error naming
// the file.
nlohmann::json read_trainer_state(const std::filesystem::path& checkpoint_folder);

// What `run_folder` already holds of a run ("7 lines of metrics, checkpoints
// up to step 6, final/"), or "" when it holds none.
std::string describe_existing_run(const std::filesystem::path& run_folder);

// Deletes what a run writes in `run_folder` (config.json, metrics and samples,
// checkpoints/, final/, TensorBoard events, summary.json, sft.jsonl); other
// files stay. For `r1kit train --overwrite`.
void clear_run_folder(const std::filesystem::path& run_folder);

// Keeps only the lines of metrics.jsonl whose "step" is <= `step` (a resumed
// run rewrites what the killed run logged after its last checkpoint).
void truncate_metrics(const std::filesystem::path& run_folder, int64_t step);

}  // namespace r1kit
