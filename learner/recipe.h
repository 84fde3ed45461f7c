// The recipe: the whole JSON file `r1kit train` runs, one struct field per key.
// Each section's struct lives in the folder that owns it; this file only puts
// them together. Every section is optional here; a stage checks that the ones
// it needs are present (Recipe::has). Read once at start-up, then read-only.
#pragma once

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "common/config.h"
#include "data/stage_configs.h"
#include "environments/environment.h"
#include "learner/grpo_config.h"
#include "learner/optimizer.h"
#include "learner/rejection_sample_stage.h"
#include "learner/reward_model_stage.h"
#include "learner/trainer_config.h"
#include "policy/model_source.h"
#include "rewards/reward_set.h"

namespace r1kit {

struct Recipe {
  std::string stage;       // which stage of the R1 pipeline this recipe runs
  int64_t seed = 0;        // seeds torch and every derived generator; fixes a CPU run
  std::string output_dir;  // the run folder; "" = runs/<recipe file name without .json>
  std::string source;      // the recipe file, for error messages (not a key)
  // Shared libraries loaded before the rest of the recipe is read: custom
  // rewards, environments, templates or stages (relative to the recipe's folder).
  std::vector<std::string> plugins;

  ModelSource model;                       // the policy (and tokenizer) to start from
  OptimizerConfig optimizer;               // AdamW and the learning-rate schedule
  TrainerConfig trainer;                   // RL steps, batching, eval and checkpoint schedule
  GrpoConfig grpo;                         // the RL algorithm: GRPO family, PPO knobs
  EnvironmentConfig environment;           // where RL prompts come from
  std::vector<RewardSpec> rewards;         // how completions are scored
  PretrainConfig pretrain;                 // stage pretrain
  SftConfig sft;                           // stage sft
  RewardModelConfig reward_model;          // stage reward_model
  RejectionSampleConfig rejection_sample;  // stage rejection_sample

  void visit(ConfigVisitor& v);
  // True when the recipe file set the section `key`.
  bool has(const std::string& key) const { return present_.count(key) > 0; }
  // Throws a config error naming the file unless every key in `keys` is present.
  void require(const std::vector<std::string>& keys) const;

 private:
  std::set<std::string> present_;
  friend Recipe parse_recipe(const nlohmann::json&, const std::string&, const std::string&,
                             nlohmann::json*);
};

// Reads `path`, applies `overrides` ("a.b=value"), validates. Errors name the
// file and key path. `resolved` receives the recipe with every default filled.
Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides,
                   nlohmann::json* resolved = nullptr);

// Loads the plugins a recipe's `plugins` key lists (a list of paths, relative
// to `base_folder`) and rewrites them in `json` as the paths loaded, so the
// resolved recipe records them. Called before the recipe is parsed, since the
// names it uses may come from a plugin; errors are prefixed with `source`.
void load_recipe_plugins(nlohmann::json& json, const std::filesystem::path& base_folder,
                         const std::string& source);

// The settings that unknown-key hints send TRL and verl users to (for a test
// that every one names a real key).
std::vector<std::string> renamed_recipe_key_targets();

// The same for a recipe already in memory (a pipeline's stage step): `source`
// prefixes errors, and output_dir defaults to runs/<default_name>.
Recipe parse_recipe(const nlohmann::json& json, const std::string& source,
                    const std::string& default_name, nlohmann::json* resolved = nullptr);

}  // namespace r1kit
