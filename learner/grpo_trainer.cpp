#include "learner/grpo_trainer.h"

#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cstdio>

#include "common/elapsed.h"
#include "common/error.h"
#include "common/logging.h"
#include "common/process_memory.h"
#include "common/progress.h"
#include "common/seed.h"
#include "common/thread_limit.h"
#include "learner/run_checkpoint.h"
#include "learner/stage.h"
#include "policy/checkpoint.h"
#include "policy/lora.h"

namespace r1kit {

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
  if (recipe.trainer.max_staleness > 0 && ppo) {
    throw_config_error(recipe.source +
                       ": trainer.max_staleness: asynchronous rollouts are not supported with "
                       "stage \"ppo\" (its value model scores the rollouts); use 0");
  }
  if (ppo && recipe.model.path.empty()) {
    throw_config_error(recipe.source +
                       ": model.path: stage \"ppo\" starts its value model from a HF folder");
  }
}

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
  const EngineOptions engine_options{.max_batch_size = trainer.rollout_batch_size,
                                     .compute_dtype = trainer.rollout_dtype};
  rollout_ = std::make_unique<RolloutWorkers>(weights_, policy_.tokenizer,
                                              trainer.num_rollout_workers, engine_options);
  int64_t rollout_threads = 0;
  if (trainer.max_staleness > 0) {
    // The producer's engines run rollout_threads threads beside the learner's
    // (all the cores unless trainer.learner_threads says otherwise): generation
    // is usually the shorter side, and while it runs the two share the cores.
    // The producer samples from its own copy of the policy
    // (made without drawing from torch's generator, so the learner's draws
    // are those of the synchronous loop).
    const int64_t cores = at::get_num_threads();
    rollout_threads = trainer.rollout_threads > 0 ? std::min(trainer.rollout_threads, cores)
                                                  : std::max<int64_t>(1, cores / 2);
    learner_threads_ =
        trainer.learner_threads > 0 ? std::min(trainer.learner_threads, cores) : cores;
    const std::string torch_rng = save_torch_rng();
    rollout_weights_ = std::make_shared<PolicyWeights>(frozen_copy(policy_.model));
    restore_torch_rng(torch_rng);
    const ThreadLimit limit(rollout_threads);
    async_workers_ = std::make_unique<RolloutWorkers>(rollout_weights_, policy_.tokenizer,
                                                      trainer.num_rollout_workers, engine_options);
    // The producer's collectives (rewards for the advantages, metrics) run on
    // their own group, beside the learner's gradient all-reduces.
    rollout_group_ = distributed.new_group("rollouts");
  }
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
      recipe, rollout_group_ ? *rollout_group_ : distributed,
      async_workers_ ? *async_workers_ : *rollout_, *environment_, *prompt_template_,
      *policy_.tokenizer, *rewards_, *reward_pool_, accuracy_reward_,
      policy_.model->config().max_position_embeddings);
  const int64_t optimizer_steps = trainer.max_steps * grpo.num_iterations * grpo.num_mini_batches;
  if (recipe.stage == "ppo") {
    value_model_ = std::make_unique<ValueModel>(recipe.model.path, policy_.device, policy_.dtype,
                                                grpo, recipe.optimizer, optimizer_steps);
  }
  {
    const ThreadLimit limit(learner_threads_);  // the learner's lanes share its cores
    learner_ = std::make_unique<Learner>(weights_, reference, policy_.device, grpo, trainer,
                                         recipe.optimizer, distributed, value_model_.get());
  }
  if (trainer.max_staleness > 0) {
    async_ = std::make_unique<AsyncRollouts>(
        rollout_weights_, trainer.max_staleness, rollout_threads,
        [this](int64_t step, StepMetrics& metrics) { return collector_->collect(step, metrics); });
  }
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
  RolloutBatch batch =
      async_ ? take_async_batch(step_index, metrics) : collector_->collect(step_index, metrics);
  weights_->release_decode_plans();  // the update publishes new weights: no plan outlives it
  release_free_heap_memory();
  const ThreadLimit learner_limit(learner_threads_);
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

NamedWeights GrpoTrainer::weights_snapshot() {
  at::NoGradGuard no_grad;
  NamedWeights weights;
  for (auto& [name, value] : merged_parameters(*policy_.model))
    weights.emplace_back(name, value.detach().clone());
  return weights;
}

RolloutBatch GrpoTrainer::take_async_batch(int64_t step_index, StepMetrics& metrics) {
  if (!async_->started()) {
    async_->start(step_index, recipe_.trainer.max_steps, step_index - 1, {});
    published_through_ = step_index - 1;
  }
  // The weights after the previous step, for the batch sampled max_staleness
  // steps from now (after that step's checkpoint, which saves what was sampled before).
  if (step_index - 1 > published_through_) {
    if (async_->needs_weights_of(step_index - 1))
      async_->publish(step_index - 1, weights_snapshot());
    published_through_ = step_index - 1;
  }
  double learner_idle = 0;
  CollectedBatch collected = async_->take(step_index, &learner_idle);
  for (const auto& [name, value] : collected.metrics.values()) metrics.set(name, value);
  metrics.set("async/staleness_mean", static_cast<double>(step_index - 1 - collected.weights_step));
  metrics.set("time/rollout_idle", collected.rollout_idle_seconds);
  metrics.set("time/learner_idle", learner_idle);
  return std::move(collected.batch);
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
  // Asynchronous rollouts: every rank's batches sampled ahead, from weights
  // older than these; a resumed run trains on them as the uninterrupted one
  // does. Once they are done the producer waits for this step's weights, so
  // the environment's generator below stands after the last of them.
  nlohmann::json ahead = nlohmann::json::array();
  if (async_) {
    nlohmann::json local = nlohmann::json::array();
    if (async_->started()) {
      for (const CollectedBatch& collected : async_->pending_after(step_index))
        local.push_back(collected_batch_to_json(collected));
    }
    for (const std::string& rank : distributed_.all_gather_bytes(local.dump()))
      ahead.push_back(nlohmann::json::parse(rank));
  }
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
  if (async_) {
    checkpoint.state["max_staleness"] = recipe_.trainer.max_staleness;
    checkpoint.state["sampled_ahead"] = std::move(ahead);
  }
  auto folder = save_run_checkpoint(run_dir_.path(), checkpoint, recipe_.trainer.save_total_limit);
  log_info() << "checkpoint " << folder.string();
}

int64_t GrpoTrainer::restore_checkpoint() {
  auto folder = resume_checkpoint(run_dir_.path());
  if (!folder) return 0;
  nlohmann::json state = read_trainer_state(*folder);
  const int64_t step = state.at("step").get<int64_t>();
  weights_->publish([&](Transformer& model) { load_weights_into(model, *folder / "model"); });
  weights_->version = state.value("weights_version", int64_t{0});
  learner_->restore(*folder);
  restore_rng(collector_->environment_rng(), state.at("environment_rng").get<std::string>());
  restore_torch_rng(state.at("torch_rng").get<std::string>());
  if (value_model_) value_model_->restore(*folder);
  if (async_) restore_async(state, step, folder->string());
  log_info() << "resumed from " << folder->string() << " at step " << step;
  return step;
}

void GrpoTrainer::restore_async(const nlohmann::json& state, int64_t step,
                                const std::string& folder) {
  const int64_t saved_staleness = state.value("max_staleness", int64_t{0});
  if (saved_staleness != recipe_.trainer.max_staleness) {
    throw_config_error(recipe_.source +
                       ": trainer.max_staleness: " + std::to_string(recipe_.trainer.max_staleness) +
                       ", but the checkpoint " + folder + " was written with " +
                       std::to_string(saved_staleness) + "; resume with the same value");
  }
  // One list per rank.
  const nlohmann::json saved = state.value("sampled_ahead", nlohmann::json::array());
  const std::string source = folder + "/trainer_state.json";
  if (!saved.is_array() || static_cast<int>(saved.size()) != distributed_.world_size()) {
    throw_config_error(source + ": sampled_ahead holds the batches of " +
                       std::to_string(saved.is_array() ? saved.size() : 0) +
                       " ranks; this run has " + std::to_string(distributed_.world_size()) +
                       " (resume with as many ranks)");
  }
  std::vector<CollectedBatch> ahead;
  for (const nlohmann::json& json : saved[distributed_.rank()])
    ahead.push_back(collected_batch_from_json(json, source));
  // The producer's copy starts from the restored weights, those after `step`.
  load_named_weights(*rollout_weights_, weights_snapshot());
  const int64_t first = step + 1 + static_cast<int64_t>(ahead.size());
  if (step < recipe_.trainer.max_steps)
    async_->start(first, recipe_.trainer.max_steps, step, std::move(ahead));
  published_through_ = step;
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
    if (result.tasks == 0) {
      if (!warned_no_eval_tasks_) log_warning() << no_eval_tasks_warning(recipe_.environment.name);
      warned_no_eval_tasks_ = true;
      distributed_.barrier();
      return;
    }
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
  rewards_->warn_about_failures("training");
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
