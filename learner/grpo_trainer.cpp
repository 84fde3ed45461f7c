#include "learner/grpo_trainer.h"

#include <cstdio>

#include "common/elapsed.h"
#include "common/error.h"
#include "common/logging.h"
#include "common/process_memory.h"
#include "common/progress.h"
#include "common/seed.h"
#include "learner/run_checkpoint.h"
#include "learner/stage.h"
#include "policy/checkpoint.h"

namespace r1kit {
namespace {

// The checks that span sections of an RL recipe, once, before anything loads.
void validate_rl_recipe(const Recipe& recipe, int world_size) {
  recipe.require({"model", "environment", "rewards"});
  const GrpoConfig& grpo = recipe.grpo;
  if (recipe.trainer.prompts_per_step % world_size != 0) {
    throw_config_error(recipe.source + ": trainer.prompts_per_step: " +
                       std::to_string(recipe.trainer.prompts_per_step) +
                       " is not divisible by the " + std::to_string(world_size) +
                       " ranks (a prompt's group never spans ranks)");
  }
  const bool ppo = recipe.stage == "ppo";
  if (grpo.uses_value_model() && !ppo) {
    throw_config_error(recipe.source +
                       ": grpo.adv_estimator: \"gae\" needs a value model; use stage \"ppo\"");
  }
  if (ppo && !grpo.uses_value_model()) {
    throw_config_error(recipe.source + ": grpo.adv_estimator: stage \"ppo\" uses \"gae\", got \"" +
                       grpo.adv_estimator + "\"");
  }
  if (ppo && recipe.model.path.empty()) {
    throw_config_error(recipe.source +
                       ": model.path: stage \"ppo\" starts its value model from a HF folder");
  }
}

}  // namespace

GrpoTrainer::GrpoTrainer(const Recipe& recipe, RunDir& run_dir, Distributed& distributed)
    : recipe_(recipe), run_dir_(run_dir), distributed_(distributed) {
  validate_rl_recipe(recipe, distributed.world_size());
  const GrpoConfig& grpo = recipe.grpo;
  const TrainerConfig& trainer = recipe.trainer;
  policy_ = load_policy(recipe.model, static_cast<uint64_t>(recipe.seed), recipe.source);
  policy_.model->train();
  policy_.model->set_gradient_checkpointing(trainer.gradient_checkpointing);
  if (trainer.bf16 && policy_.dtype != at::kFloat) {
    throw_config_error(
        recipe.source +
        ": trainer.bf16: autocast mixes bfloat16 into a float32 model, but model.dtype "
        "resolves to " +
        std::string(c10::toString(policy_.dtype)) + "; set model.dtype to \"float32\"");
  }
  // Models that draw from torch's generator at construction come first, in
  // this order: the reference, then the value model's new head.
  Transformer reference{nullptr};
  if (reference_needs_copy(policy_.model, grpo)) reference = frozen_copy(policy_.model);
  weights_ = std::make_shared<PolicyWeights>(policy_.model);
  rollout_ =
      std::make_unique<RolloutWorkers>(weights_, policy_.tokenizer, trainer.num_rollout_workers,
                                       EngineOptions{.max_batch_size = trainer.rollout_batch_size,
                                                     .compute_dtype = trainer.rollout_dtype});
  const std::string environment_source = recipe.source + ": environment";
  environment_ =
      make_environment(recipe.environment.name, recipe.environment.options, environment_source);
  prompt_template_ =
      make_prompt_template(recipe.environment.prompt_template, recipe.environment.system_prompt,
                           environment_source + ".prompt_template");
  rewards_ = std::make_unique<RewardSet>(recipe.rewards, recipe.source);
  reward_pool_ = std::make_unique<ThreadPool>(static_cast<size_t>(trainer.num_reward_workers));
  accuracy_reward_ = find_accuracy_reward(*rewards_, trainer.accuracy_reward, recipe.source);
  collector_ = std::make_unique<RolloutCollector>(
      recipe, distributed, *rollout_, *environment_, *prompt_template_, *policy_.tokenizer,
      *rewards_, *reward_pool_, accuracy_reward_, policy_.model->config().max_position_embeddings);
  const int64_t optimizer_steps = trainer.max_steps * grpo.num_iterations * grpo.num_mini_batches;
  if (recipe.stage == "ppo") {
    value_model_ = std::make_unique<ValueModel>(recipe.model.path, policy_.device, policy_.dtype,
                                                grpo, recipe.optimizer, optimizer_steps);
  }
  learner_ = std::make_unique<Learner>(weights_, reference, policy_.device, grpo, trainer,
                                       recipe.optimizer, distributed, value_model_.get());
  advantages_ = advantage_estimator_registry().get(grpo.adv_estimator,
                                                   recipe.source + ": grpo.adv_estimator")(
      {.scale_rewards = grpo.scale_rewards, .value_model = value_model_.get()});
  if (distributed.is_main() && trainer.tensorboard)
    tensorboard_ = std::make_unique<TensorBoardWriter>(run_dir.path());
}

GrpoTrainer::~GrpoTrainer() = default;

nlohmann::json GrpoTrainer::step(int64_t step_index) {
  StepMetrics metrics;
  const auto step_start = SteadyClock::now();
  // 1-5. Environment -> template -> rollout (G per prompt, multi-turn) -> rewards.
  learner_->release_gradients();
  RolloutBatch batch = collector_->collect(step_index, metrics);
  weights_->release_decode_plans();  // the update publishes new weights: no plan outlives it
  release_free_heap_memory();
  // 6. Advantages: group-relative, or GAE through the value model.
  for (const AdvantageRound& round : batch.rounds) advantages_->assign(round, batch.samples);
  // 7. Learner: micro-batched loss, gradients summed over ranks, optimiser step;
  // 8. which the rollout engine sees at once (colocated: the same tensors).
  const auto learn_start = SteadyClock::now();
  learner_->update(batch.samples).write(metrics);
  release_free_heap_memory();
  if (value_model_) value_model_->write(metrics);
  metrics.set("time/learn", seconds_since(learn_start));
  learner_->sync_reference(step_index);
  // 9. Metrics of the whole step, over every rank.
  const double step_seconds = seconds_since(step_start);
  metrics.set("time/step", step_seconds);
  at::Tensor tokens = at::tensor({metrics.get("num_tokens")}, at::kDouble);
  distributed_.all_reduce_sum(tokens);
  metrics.set("num_tokens", tokens.item<double>());
  metrics.set("tokens_per_second", tokens.item<double>() / std::max(step_seconds, 1e-9));
  if (distributed_.is_main()) run_dir_.log_samples(batch.logged_completions());
  return metrics.line(step_index);
}

EvaluationResult GrpoTrainer::evaluate() {
  EvaluationOptions options =
      recipe_evaluation_options(recipe_.grpo, recipe_.trainer, recipe_.seed, *environment_,
                                policy_.model->config().max_position_embeddings);
  options.accuracy_reward = accuracy_reward_;
  options.add_special_tokens = recipe_.environment.add_special_tokens;
  return evaluate_policy(*rollout_, environment_->eval_tasks(), *prompt_template_,
                         *policy_.tokenizer, *rewards_, *reward_pool_, options);
}

void GrpoTrainer::save_checkpoint(int64_t step_index) {
  if (!distributed_.is_main()) return;
  RunCheckpoint checkpoint;
  checkpoint.policy = policy_.model;
  checkpoint.tokenizer = policy_.tokenizer.get();
  learner_->add_to(checkpoint);
  if (value_model_) value_model_->add_to(checkpoint);
  checkpoint.state = {{"step", step_index},
                      {"environment_rng", save_rng(collector_->environment_rng())},
                      {"torch_rng", save_torch_rng()},
                      {"weights_version", weights_->version.load()},
                      {"recipe", write_config(const_cast<Recipe&>(recipe_))}};
  auto folder = save_run_checkpoint(run_dir_.path(), checkpoint, recipe_.trainer.save_total_limit);
  log_info() << "checkpoint " << folder.string();
}

int64_t GrpoTrainer::restore_checkpoint() {
  auto folder = resume_checkpoint(run_dir_.path());
  if (!folder) return 0;
  nlohmann::json state = read_json_file((*folder / "trainer_state.json").string());
  const int64_t step = state.at("step").get<int64_t>();
  weights_->publish([&](Transformer& model) { load_weights_into(model, *folder / "model"); });
  weights_->version = state.value("weights_version", int64_t{0});
  learner_->restore(*folder);
  restore_rng(collector_->environment_rng(), state.at("environment_rng").get<std::string>());
  restore_torch_rng(state.at("torch_rng").get<std::string>());
  if (value_model_) value_model_->restore(*folder);
  log_info() << "resumed from " << folder->string() << " at step " << step;
  return step;
}

void GrpoTrainer::log_line(const nlohmann::json& line) {
  if (!distributed_.is_main()) return;
  run_dir_.log_metrics(line);
  if (!tensorboard_) return;
  std::map<std::string, double> scalars;
  for (const auto& [key, value] : line.items()) {
    if (key != "step" && value.is_number()) scalars[key] = value.get<double>();
  }
  tensorboard_->add_scalars(line["step"].get<int64_t>(), scalars);
}

void GrpoTrainer::run_evaluation(int64_t step_index) {
  if (distributed_.is_main()) {
    EvaluationResult result = evaluate();
    nlohmann::json line = {{"step", step_index}};
    for (const auto& [name, value] : result.metrics()) line[name] = value;
    log_line(line);
    log_info() << "eval at step " << step_index << ": accuracy " << result.accuracy << ", reward "
               << result.reward << " over " << result.tasks << " tasks";
  }
  distributed_.barrier();
}

void GrpoTrainer::train(bool resume) {
  const TrainerConfig& trainer = recipe_.trainer;
  const int64_t done = resume ? restore_checkpoint() : 0;
  if (done == 0) run_evaluation(0);
  ProgressBar progress("grpo", trainer.max_steps);
  progress.update(done);
  for (int64_t step_index = done + 1; step_index <= trainer.max_steps; ++step_index) {
    nlohmann::json line = step(step_index);
    log_line(line);
    char status[160];
    std::snprintf(status, sizeof status, "reward %.3f  kl %.4f  len %.1f",
                  line["reward"].get<double>(), line["kl"].get<double>(),
                  line["completions/mean_length"].get<double>());
    progress.update(step_index, status);
    const bool last = step_index == trainer.max_steps;
    if ((trainer.eval_steps > 0 && step_index % trainer.eval_steps == 0) ||
        (last && trainer.eval_steps == 0) ||
        (last && trainer.max_steps % std::max<int64_t>(trainer.eval_steps, 1) != 0)) {
      run_evaluation(step_index);
    }
    if ((trainer.save_steps > 0 && step_index % trainer.save_steps == 0) || last)
      save_checkpoint(step_index);
  }
  progress.finish();
  if (distributed_.is_main()) save_final();
}

void GrpoTrainer::save_final() {
  auto folder = save_final_model(run_dir_.path(), policy_.model, *policy_.tokenizer);
  log_info() << "final policy written to " << folder.string();
  if (value_model_) value_model_->save_final(run_dir_.path(), *policy_.tokenizer);
}

void run_grpo_stage(const Recipe& recipe, RunDir& run_dir, const TrainOptions& options) {
  auto distributed = Distributed::from_environment(resolve_device(recipe.model.device));
  GrpoTrainer trainer(recipe, run_dir, *distributed);
  trainer.train(options.resume);
}

REGISTER_STAGE("grpo", run_grpo_stage);
REGISTER_STAGE("ppo", run_grpo_stage);

}  // namespace r1kit
