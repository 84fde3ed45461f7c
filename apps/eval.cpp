// `r1kit eval RECIPE.json [--model DIR]`: scores a policy on the held-out split
// of the recipe's environment with its rewards: greedy accuracy, mean reward,
// optional pass@k, and a few example completions.
#include <CLI/CLI.hpp>
#include <iostream>

#include "apps/plugin_option.h"
#include "apps/subcommand.h"
#include "common/error.h"
#include "common/logging.h"
#include "learner/evaluation.h"
#include "learner/recipe.h"

namespace r1kit::apps {
namespace {

struct EvalArguments {
  std::string recipe_path;
  std::vector<std::string> overrides;
  std::string model_path;
  int64_t max_tasks = 0;
  int64_t pass_at_k = 0;
  bool show_examples = false;
  std::vector<std::string> plugins;
};

int run_eval(const EvalArguments& args) {
  load_plugins(args.plugins);
  Recipe recipe = load_recipe(args.recipe_path, args.overrides);
  recipe.require({"environment", "rewards"});
  ModelSource source = recipe.model;
  if (!args.model_path.empty()) {
    source.path = args.model_path;
    source.tokenizer = "";
    source.config = nlohmann::json();
  }
  LoadedPolicy policy = load_policy(source, static_cast<uint64_t>(recipe.seed), recipe.source);
  auto environment = make_environment(recipe.environment.name, recipe.environment.options,
                                      recipe.source + ": environment");
  auto prompt_template =
      make_prompt_template(recipe.environment.prompt_template, recipe.environment.system_prompt,
                           recipe.source + ": environment.prompt_template");
  RewardSet rewards(recipe.rewards, recipe.source);
  ThreadPool pool(static_cast<size_t>(recipe.trainer.num_reward_workers));
  auto weights = std::make_shared<PolicyWeights>(policy.model);
  RolloutWorkers rollout(weights, policy.tokenizer, 1,
                         {.max_batch_size = recipe.trainer.rollout_batch_size,
                          .compute_dtype = recipe.trainer.rollout_dtype});
  EvaluationOptions options =
      recipe_evaluation_options(recipe.grpo, recipe.trainer, recipe.seed, *environment,
                                policy.model->config().max_position_embeddings);
  if (args.max_tasks > 0) options.max_tasks = args.max_tasks;
  options.add_special_tokens = recipe.environment.add_special_tokens;
  if (args.pass_at_k > 0) options.pass_at_k = args.pass_at_k;
  options.accuracy_reward =
      find_accuracy_reward(rewards, recipe.trainer.accuracy_reward, recipe.source);
  if (environment->eval_tasks().empty())
    log_warning() << no_eval_tasks_warning(recipe.environment.name);
  EvaluationResult result = evaluate_policy(rollout, environment->eval_tasks(), *prompt_template,
                                            *policy.tokenizer, rewards, pool, options);
  nlohmann::json report = {{"model", source.path.empty() ? "(random init)" : source.path}};
  for (const auto& [name, value] : result.metrics()) report[name] = value;
  if (args.show_examples) report["examples"] = result.examples;
  std::cout << report.dump(2) << "\n";
  return 0;
}

Action setup(CLI::App& app) {
  auto args = std::make_shared<EvalArguments>();
  app.add_option("recipe", args->recipe_path,
                 "recipe with the environment and rewards to evaluate on")
      ->required();
  app.add_option("--model", args->model_path,
                 "Hugging Face folder to evaluate (default: the recipe's model)");
  app.add_option("--set", args->overrides, "override a recipe key")->type_name("KEY=VALUE");
  app.add_option("--max-tasks", args->max_tasks,
                 "held-out tasks to use; 0 = the recipe's trainer.eval_samples");
  app.add_option("--pass-at-k", args->pass_at_k, "also report pass@k with k samples per task");
  app.add_flag("--examples", args->show_examples, "print a few greedy completions");
  add_plugin_option(app, args->plugins);
  return [args] { return run_eval(*args); };
}

}  // namespace

REGISTER_SUBCOMMAND("eval",
                    "score a checkpoint on a recipe's held-out tasks: accuracy, reward, pass@k",
                    setup);

}  // namespace r1kit::apps
