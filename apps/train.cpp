// `r1kit train RECIPE.json [--set key=value ...] [--resume]`: validates the
// recipe, writes the resolved copy into the run folder and runs its stage.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "apps/subcommand.h"
#include "common/logging.h"
#include "common/seed.h"
#include "learner/run_checkpoint.h"
#include "learner/stage.h"

namespace r1kit::apps {
namespace {

struct TrainArguments {
  std::string recipe_path;
  std::vector<std::string> overrides;
  bool resume = false;
  bool check_only = false;
};

int run_train(const TrainArguments& args) {
  nlohmann::json resolved;
  Recipe recipe = load_recipe(args.recipe_path, args.overrides, &resolved);
  if (args.check_only) {
    std::cout << resolved.dump(2) << "\n";
    return 0;
  }
  const StageDriver& driver = find_stage(recipe.stage);
  // Rank 0 owns the run folder's files; the other ranks only read checkpoints.
  const char* rank = std::getenv("RANK");
  const bool main_rank = rank == nullptr || std::string(rank).empty() || std::string(rank) == "0";
  bool append = false;
  if (args.resume) {
    // Lines the killed run logged after its last checkpoint are dropped: the
    // resumed run writes them again.
    auto checkpoint = latest_run_checkpoint(recipe.output_dir);
    if (checkpoint) {
      int64_t step = read_json_file((*checkpoint / "trainer_state.json").string()).at("step").get<int64_t>();
      if (main_rank) truncate_metrics(recipe.output_dir, step);
      append = true;
    }
  }
  RunDir run_dir(recipe.output_dir, append, main_rank);
  run_dir.write_config(resolved);
  seed_torch(static_cast<uint64_t>(recipe.seed));
  log_info() << "stage " << recipe.stage << ", run folder " << run_dir.path().string();
  driver(recipe, run_dir, TrainOptions{.resume = args.resume});
  return 0;
}

Action setup(CLI::App& app) {
  auto args = std::make_shared<TrainArguments>();
  app.add_option("recipe", args->recipe_path, "recipe JSON file (see configs/)")->required();
  app.add_option("--set", args->overrides, "override a recipe key: --set learner.learning_rate=1e-5")
      ->type_name("KEY=VALUE");
  app.add_flag("--resume", args->resume, "continue the run in the recipe's output_dir from its last checkpoint");
  app.add_flag("--check", args->check_only, "validate the recipe and print it resolved, then exit");
  return [args] { return run_train(*args); };
}

}  // namespace

REGISTER_SUBCOMMAND("train", "run a recipe: pretrain, sft, reward_model, grpo, ppo or rejection_sample", setup);

}  // namespace r1kit::apps
