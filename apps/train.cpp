// `r1kit train RECIPE.json [--set key=value ...] [--resume] [--until STEP] [--check]`: runs
// one stage recipe (config.json written into its run folder), or a pipeline
// file (a top-level "pipeline" key: every step of learner/pipeline.h in order).
#include <CLI/CLI.hpp>
#include <iostream>

#include "apps/subcommand.h"
#include "common/error.h"
#include "learner/pipeline.h"
#include "learner/stage.h"

namespace r1kit::apps {
namespace {

struct TrainArguments {
  std::string recipe_path;
  std::vector<std::string> overrides;
  bool resume = false;
  bool check_only = false;
  std::string until;
};

int run_train_pipeline(const TrainArguments& args) {
  Pipeline pipeline = load_pipeline(args.recipe_path, args.overrides);
  if (args.check_only) {
    std::cout << pipeline.resolved().dump(2) << "\n";
    return 0;
  }
  std::cout << run_pipeline(pipeline, PipelineOptions{.resume = args.resume, .until = args.until})
            << std::flush;
  return 0;
}

int run_train(const TrainArguments& args) {
  if (is_pipeline(read_json_file(args.recipe_path))) return run_train_pipeline(args);
  if (!args.until.empty())
    throw_usage_error(args.recipe_path + ": --until names a pipeline step; this is a stage recipe");
  nlohmann::json resolved;
  Recipe recipe = load_recipe(args.recipe_path, args.overrides, &resolved);
  if (args.check_only) {
    std::cout << resolved.dump(2) << "\n";
    return 0;
  }
  run_stage(recipe, resolved, TrainOptions{.resume = args.resume});
  return 0;
}

Action setup(CLI::App& app) {
  auto args = std::make_shared<TrainArguments>();
  app.add_option("recipe", args->recipe_path, "recipe or pipeline JSON file (see configs/)")
      ->required();
  app.add_option("--set", args->overrides,
                 "override a recipe key: --set learner.learning_rate=1e-5")
      ->type_name("KEY=VALUE");
  app.add_flag("--resume", args->resume,
               "continue the run in the recipe's output_dir from its last checkpoint (a pipeline "
               "skips finished steps)");
  app.add_option("--until", args->until,
                 "pipeline only: stop after the step of this name (e.g. sft)")
      ->type_name("STEP");
  app.add_flag("--check", args->check_only,
               "validate the recipe (every step of a pipeline) and print it resolved");
  return [args] { return run_train(*args); };
}

}  // namespace

REGISTER_SUBCOMMAND("train",
                    "run a recipe (pretrain, sft, reward_model, grpo, ppo or rejection_sample) or "
                    "a pipeline of them",
                    setup);

}  // namespace r1kit::apps
