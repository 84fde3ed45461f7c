// The registry of training stages (pretrain, sft, reward_model, grpo, ppo,
// rejection_sample): `r1kit train` looks the recipe's stage up here. A stage
// driver registers itself with REGISTER_STAGE in its own .cpp file.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/run_dir.h"
#include "learner/recipe.h"

namespace r1kit {

// Options of `r1kit train` that are not part of the recipe.
struct TrainOptions {
  bool resume = false;  // continue the run in recipe.output_dir from its last checkpoint
};

using StageDriver = std::function<void(const Recipe&, RunDir&, const TrainOptions&)>;

void register_stage(const std::string& name, StageDriver driver);
// Throws a config error naming the stage and listing the registered ones.
const StageDriver& find_stage(const std::string& name);
std::vector<std::string> registered_stages();

// Runs `recipe`'s stage the way `r1kit train` does: opens its run folder
// (rank 0 writes), writes `resolved` there as config.json, seeds torch and
// calls the driver. With options.resume and a checkpoint in the run folder,
// the metrics lines logged after that checkpoint are dropped first.
void run_stage(const Recipe& recipe, const nlohmann::json& resolved, const TrainOptions& options);

}  // namespace r1kit

#define R1KIT_STAGE_CONCAT_INNER(a, b) a##b
#define R1KIT_STAGE_CONCAT(a, b) R1KIT_STAGE_CONCAT_INNER(a, b)
#define REGISTER_STAGE(name, driver)                                       \
  static const bool R1KIT_STAGE_CONCAT(stage_registered_, __LINE__) = [] { \
    ::r1kit::register_stage(name, driver);                                 \
    return true;                                                           \
  }()
