// The registry of training stages (pretrain, sft, reward_model, grpo, ppo,
// rejection_sample): `r1kit train` looks the recipe's stage up here. A stage
// driver registers itself with REGISTER_STAGE in its own .cpp file. Lookups are
// thread-safe; drivers run on the caller's thread.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/registry.h"
#include "common/run_dir.h"
#include "learner/recipe.h"

namespace r1kit {

// Options of `r1kit train` that are not part of the recipe.
struct TrainOptions {
  bool resume = false;     // continue the run in recipe.output_dir from its last checkpoint
  bool overwrite = false;  // delete a run already in recipe.output_dir and start again
};

using StageDriver = std::function<void(const Recipe&, RunDir&, const TrainOptions&)>;

// The stage registry: REGISTER_STAGE lines add to it.
Registry<StageDriver>& stage_registry();

// stage_registry().add(name, driver): a taken name is a config error.
void register_stage(const std::string& name, StageDriver driver);
// The driver of `name`; an unknown name throws the registry's config error.
StageDriver find_stage(const std::string& name);
// stage_registry().names(): sorted.
std::vector<std::string> registered_stages();

// Runs `recipe`'s stage the way `r1kit train` does: locks and opens its run
// folder (rank 0 writes), writes `resolved` there as config.json, seeds torch
// and calls the driver. A folder that already holds a run is a usage error
// unless options.resume (continue it) or options.overwrite (delete it). With
// options.resume and a checkpoint in the run folder, the metrics lines logged
// after that checkpoint are dropped first.
void run_stage(const Recipe& recipe, const nlohmann::json& resolved, const TrainOptions& options);

}  // namespace r1kit

// Registers `driver` (a StageDriver) as the stage `name` at load time.
#define REGISTER_STAGE(name, driver) R1KIT_REGISTER(::r1kit::stage_registry(), name, driver)
