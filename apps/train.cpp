// `r1kit train RECIPE.json [--set key=value ...] [--resume] [--until STEP] [--check]`: runs
// one stage recipe (config.json written into its run folder), or a pipeline
// file (a top-level "pipeline" key: every step of learner/pipeline.h in order),
// which ends with a summary of what RL did when it has an RL step.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "apps/plugin_option.h"
#include "apps/subcommand.h"
#include "common/error.h"
#include "common/run_dir.h"
#include "learner/pipeline.h"
#include "learner/recipe_check.h"
#include "learner/stage.h"

namespace r1kit::apps {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

// After an RL step (the last grpo or ppo step) with evaluations: held-out
// greedy accuracy at its first and last evaluation, the mean train reward of
// its first and last few steps, and as the last line
// `<stage>_accuracy_gain: <last - first>` (the line scripts/demo.sh's test
// reads). "" when there is no such step or its metrics have no evaluation.
std::string pipeline_summary(const Pipeline& pipeline) {
  // The last grpo or ppo step, and the stage step before it (which trained
  // the policy it starts from).
  const PipelineStep* rl = nullptr;
  const PipelineStep* before = nullptr;
  const PipelineStep* plot = nullptr;
  std::vector<std::string> run_names;
  for (const auto& step : pipeline.steps) {
    if (step.kind == "plot") plot = &step;
    if (step.kind != "recipe") continue;
    run_names.push_back(step.name);
    if (step.recipe.stage == "grpo" || step.recipe.stage == "ppo") rl = &step;
  }
  if (rl == nullptr) return "";
  for (const auto& step : pipeline.steps) {
    if (&step == rl) break;
    if (step.kind == "recipe") before = &step;
  }
  const fs::path metrics_path = fs::path(rl->recipe.output_dir) / "metrics.jsonl";
  if (!fs::exists(metrics_path)) return "";
  std::vector<json> evals, steps;
  for (const json& line : read_jsonl(metrics_path)) {
    if (line.contains("eval/accuracy")) evals.push_back(line);
    if (line.contains("reward")) steps.push_back(line);
  }
  if (evals.empty()) return "";

  const double first = evals.front()["eval/accuracy"].get<double>();
  const double last = evals.back()["eval/accuracy"].get<double>();
  const std::string before_label = before ? upper(before->name) : "start";
  const std::string after_label = upper(rl->name);
  std::string text = "\n";
  char line[256];
  std::snprintf(line, sizeof(line), "%-32s%10s\n", "", "value");
  text += line;
  std::snprintf(line, sizeof(line), "%-32s%10.3f   (step %lld, %.0f tasks)\n",
                ("held-out greedy accuracy, " + before_label).c_str(), first,
                static_cast<long long>(evals.front().value("step", int64_t{0})),
                evals.front().value("eval/tasks", 0.0));
  text += line;
  std::snprintf(line, sizeof(line), "%-32s%10.3f   (step %lld)\n",
                ("held-out greedy accuracy, " + after_label).c_str(), last,
                static_cast<long long>(evals.back().value("step", int64_t{0})));
  text += line;
  if (!steps.empty()) {
    // The mean of the first and last k steps, k a quarter of the run (1 to 5).
    const size_t k = std::max<size_t>(1, std::min<size_t>(5, steps.size() / 4));
    double reward_start = 0.0, reward_end = 0.0;
    for (size_t i = 0; i < k; ++i) {
      reward_start += steps[i]["reward"].get<double>();
      reward_end += steps[steps.size() - k + i]["reward"].get<double>();
    }
    std::snprintf(line, sizeof(line), "%-32s%10.3f\n%-32s%10.3f\n", "train reward, first steps",
                  reward_start / k, "train reward, last steps", reward_end / k);
    text += line;
  }
  std::string folders;
  for (const auto& name : run_names) folders += (folders.empty() ? "" : ",") + name;
  if (run_names.size() > 1) folders = "{" + folders + "}";
  if (plot) text += "plots: " + plot->resolved.at("plot").at("out").get<std::string>() + "/   ";
  text += "run folders: " + pipeline.output_dir + "/" + folders + "\n";
  std::snprintf(line, sizeof(line), "%s_accuracy_gain: %.3f\n", rl->recipe.stage.c_str(),
                last - first);
  text += line;
  return text;
}

struct TrainArguments {
  std::string recipe_path;
  std::vector<std::string> overrides;
  bool resume = false;
  bool overwrite = false;
  bool check_only = false;
  std::string until;
  std::vector<std::string> plugins;
};

int run_train_pipeline(const TrainArguments& args) {
  Pipeline pipeline = load_pipeline(args.recipe_path, args.overrides);
  if (args.check_only) {
    for (const PipelineStep& step : pipeline.steps) {
      if (step.kind == "recipe") check_recipe_resolves(step.recipe, pipeline.output_dir);
    }
    std::cout << pipeline.resolved().dump(2) << "\n";
    return 0;
  }
  if (run_pipeline(
          pipeline,
          PipelineOptions{.resume = args.resume, .overwrite = args.overwrite, .until = args.until}))
    std::cout << pipeline_summary(pipeline) << std::flush;
  return 0;
}

int run_train(const TrainArguments& args) {
  load_plugins(args.plugins);
  if (is_pipeline(read_json_file(args.recipe_path, /*reject_duplicate_keys=*/true)))
    return run_train_pipeline(args);
  if (!args.until.empty())
    throw_usage_error(args.recipe_path + ": --until names a pipeline step; this is a stage recipe");
  nlohmann::json resolved;
  Recipe recipe = load_recipe(args.recipe_path, args.overrides, &resolved);
  if (args.check_only) {
    check_recipe_resolves(recipe);
    std::cout << resolved.dump(2) << "\n";
    return 0;
  }
  run_stage(recipe, resolved, TrainOptions{.resume = args.resume, .overwrite = args.overwrite});
  return 0;
}

Action setup(CLI::App& app) {
  auto args = std::make_shared<TrainArguments>();
  app.add_option("recipe", args->recipe_path, "recipe or pipeline JSON file (see configs/)")
      ->required();
  app.add_option("--set", args->overrides,
                 "override a recipe key: --set optimizer.learning_rate=1e-5")
      ->type_name("KEY=VALUE");
  app.add_flag("--resume", args->resume,
               "continue the run in the recipe's output_dir from its last checkpoint (a pipeline "
               "skips finished steps)");
  app.add_flag("--overwrite", args->overwrite,
               "delete the run already in the recipe's output_dir (metrics, checkpoints, final "
               "model) and start again")
      ->excludes("--resume");
  app.add_option("--until", args->until,
                 "pipeline only: stop after the step of this name (e.g. sft)")
      ->type_name("STEP");
  add_plugin_option(app, args->plugins);
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
