#include "learner/grpo_trainer.h"

#include <c10/core/InferenceMode.h>
#include <torch/csrc/autograd/autograd.h>

#include <array>
#include <chrono>
#include <cmath>

#include "common/elapsed.h"
#include "common/error.h"
#include "common/logging.h"
#include "common/progress.h"
#include "common/seed.h"
#include "learner/advantages.h"
#include "learner/autocast.h"
#include "learner/episodes.h"
#include "learner/learner_lanes.h"
#include "learner/logprobs.h"
#include "learner/prompt_encoding.h"
#include "learner/run_checkpoint.h"
#include "learner/stage.h"
#include "policy/checkpoint.h"
#include "policy/shared_prefix.h"

namespace r1kit {
namespace {

// d loss / d parameters[begin..end) into gradients[begin..end): left undefined
// for a frozen parameter or one the loss does not reach. .grad is untouched
// (LearnerLanes adds the micro-batches up in order).
void gradients_into(std::vector<at::Tensor>& gradients, const at::Tensor& loss,
                    const std::vector<at::Tensor>& parameters, size_t begin, size_t end) {
  std::vector<at::Tensor> trainable;
  std::vector<size_t> where;
  for (size_t j = begin; j < end; ++j) {
    if (!parameters[j].requires_grad()) continue;
    trainable.push_back(parameters[j]);
    where.push_back(j);
  }
  if (trainable.empty() || !loss.requires_grad()) return;
  std::vector<at::Tensor> computed =
      torch::autograd::grad({loss}, trainable, {}, /*retain_graph=*/false,
                            /*create_graph=*/false, /*allow_unused=*/true);
  for (size_t k = 0; k < where.size(); ++k) gradients[where[k]] = std::move(computed[k]);
}

using Clock = SteadyClock;

// A copy of `model` with its own tensors: the frozen reference policy.
Transformer clone_model(Transformer& model) {
  Transformer copy(model->config());
  auto target = copy->named_parameters();
  at::NoGradGuard no_grad;
  for (const auto& item : model->named_parameters()) {
    target[item.key()].copy_(item.value());
  }
  copy->to(model->model->embed_tokens->weight.device(),
           model->model->embed_tokens->weight.scalar_type());
  for (auto& parameter : copy->parameters()) parameter.set_requires_grad(false);
  return copy;
}

// The sampling seed of one generation round: fixed by run seed, step and round.
int64_t round_seed(int64_t seed, int64_t step, int64_t round) {
  auto rng = make_rng(static_cast<uint64_t>(seed),
                      "rollout/" + std::to_string(step) + "/" + std::to_string(round));
  return static_cast<int64_t>(rng() >> 1);
}

// Token entropy (B, T) that is only logged (entropy_coeff 0): no autograd
// graph, and rows in chunks of at most kEntropyChunkValues logits, so
// softmax's float32 temporaries stay small beside the logits the loss still
// holds (one row at a time for a large vocabulary, all rows for a small one).
constexpr int64_t kEntropyChunkValues = int64_t{1} << 22;

at::Tensor logged_entropy(const at::Tensor& logits, double temperature) {
  at::NoGradGuard no_grad;
  const int64_t rows_per_chunk =
      std::max<int64_t>(1, kEntropyChunkValues / std::max<int64_t>(1, logits[0].numel()));
  std::vector<at::Tensor> chunks;
  for (int64_t b = 0; b < logits.size(0); b += rows_per_chunk)
    chunks.push_back(token_entropy(
        logits.narrow(0, b, std::min(rows_per_chunk, logits.size(0) - b)).detach(), temperature));
  return at::cat(chunks, 0);
}

// The sums behind a step's per-reward statistics and accuracy, over every
// generation round; all_reduce() makes them cover every rank, so the logged
// means are global (as with one rank and the whole batch).
class RewardTally {
 public:
  explicit RewardTally(size_t rewards)
      : rewards_(rewards), sums_(kPerReward * rewards + kShared, 0.0) {}

  void add(const BatchScores& scores, const std::vector<MultiTurnTrajectory>& trajectories,
           size_t accuracy_reward) {
    names_ = scores.names;
    for (size_t n = 0; n < scores.values.size(); ++n) {
      for (size_t k = 0; k < rewards_; ++k) {
        double* entry = &sums_[kPerReward * k];
        if (const auto& value = scores.values[n][k]) {
          entry[0] += *value;
          entry[1] += *value * *value;
          entry[2] += 1;
        } else {
          entry[3] += 1;
        }
      }
      double* shared = &sums_[kPerReward * rewards_];
      shared[0] += reward_is_correct(scores, n, accuracy_reward);
      shared[1] += 1;
      if (trajectories[n].environment_reward) {
        shared[2] += *trajectories[n].environment_reward;
        shared[3] += 1;
      }
    }
    for (size_t k = 0; k < rewards_; ++k) {
      sums_[kPerReward * k + 4] += static_cast<double>(scores.errors[k]);
      sums_[kPerReward * k + 5] += static_cast<double>(scores.timeouts[k]);
    }
  }

  void all_reduce(Distributed& distributed) {
    at::Tensor packed = at::tensor(sums_, at::kDouble);
    distributed.all_reduce_sum(packed);
    std::copy(packed.data_ptr<double>(), packed.data_ptr<double>() + packed.numel(), sums_.begin());
  }

  // rewards/<name>/mean and /std over applicable samples, the step's
  // reward/<name>/{errors,timeouts,not_applicable} counts, accuracy, and
  // rewards/environment/mean when the environment scored trajectories.
  void write(std::map<std::string, double>& metrics) const {
    for (size_t k = 0; k < rewards_ && k < names_.size(); ++k) {
      const double* entry = &sums_[kPerReward * k];
      const double count = entry[2];
      const double mean = count > 0 ? entry[0] / count : 0.0;
      // Sample standard deviation, as BatchScores::metrics.
      const double variance =
          count > 1 ? std::max(entry[1] - count * mean * mean, 0.0) / (count - 1) : 0.0;
      metrics["rewards/" + names_[k] + "/mean"] = mean;
      metrics["rewards/" + names_[k] + "/std"] = std::sqrt(variance);
      metrics["reward/" + names_[k] + "/not_applicable"] = entry[3];
      metrics["reward/" + names_[k] + "/errors"] = entry[4];
      metrics["reward/" + names_[k] + "/timeouts"] = entry[5];
    }
    const double* shared = &sums_[kPerReward * rewards_];
    metrics["accuracy"] = shared[1] > 0 ? shared[0] / shared[1] : 0.0;
    if (shared[3] > 0) metrics["rewards/environment/mean"] = shared[2] / shared[3];
  }

 private:
  // Per reward: sum, sum of squares, applicable, not applicable, errors, timeouts.
  static constexpr size_t kPerReward = 6;
  // Then: correct, samples, environment reward sum, environment rewards.
  static constexpr size_t kShared = 4;
  size_t rewards_;
  std::vector<double> sums_;
  std::vector<std::string> names_;
};

}  // namespace

struct GrpoTrainer::Rollout {
  std::vector<TrainingSample> samples;  // this rank's, grouped by prompt
  std::map<std::string, double> metrics;
  std::vector<nlohmann::json> logged;  // completions for samples.jsonl
};

GrpoTrainer::GrpoTrainer(const Recipe& recipe, RunDir& run_dir, Distributed& distributed)
    : recipe_(recipe), run_dir_(run_dir), distributed_(distributed) {
  recipe.require({"model", "environment", "rewards"});
  const GrpoConfig& grpo = recipe.grpo;
  const TrainerConfig& trainer = recipe.trainer;
  if (trainer.prompts_per_step % distributed.world_size() != 0) {
    throw_config_error(recipe.source +
                       ": trainer.prompts_per_step: " + std::to_string(trainer.prompts_per_step) +
                       " is not divisible by the " + std::to_string(distributed.world_size()) +
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
  policy_ = load_policy(recipe.model, static_cast<uint64_t>(recipe.seed), recipe.source);
  policy_.model->train();
  if (trainer.bf16 && policy_.dtype != at::kFloat) {
    throw_config_error(
        recipe.source +
        ": trainer.bf16: autocast mixes bfloat16 into a float32 model, but model.dtype "
        "resolves to " +
        std::string(c10::toString(policy_.dtype)) + "; set model.dtype to \"float32\"");
  }
  if (grpo.uses_reference_model()) reference_ = clone_model(policy_.model);
  weights_ = std::make_shared<PolicyWeights>(policy_.model);
  rollout_ =
      std::make_unique<RolloutWorkers>(weights_, policy_.tokenizer, trainer.num_rollout_workers,
                                       EngineOptions{.max_batch_size = trainer.rollout_batch_size,
                                                     .compute_dtype = trainer.rollout_dtype});
  const std::string env_source = recipe.source + ": environment";
  environment_ = make_environment(recipe.environment.name, recipe.environment.options, env_source);
  prompt_template_ =
      make_prompt_template(recipe.environment.prompt_template, recipe.environment.system_prompt,
                           env_source + ".prompt_template");
  rewards_ = std::make_unique<RewardSet>(recipe.rewards, recipe.source);
  reward_pool_ = std::make_unique<ThreadPool>(static_cast<size_t>(trainer.num_reward_workers));
  lanes_ = std::make_unique<LearnerLanes>(policy_.device);
  accuracy_reward_ = find_accuracy_reward(*rewards_, trainer.accuracy_reward, recipe.source);
  optimizer_ = std::make_unique<Optimizer>(
      policy_.model->decay_parameters(), policy_.model->no_decay_parameters(), recipe.optimizer,
      trainer.max_steps * grpo.num_iterations * grpo.num_mini_batches);
  environment_rng_ = make_rng(static_cast<uint64_t>(recipe.seed), "environment");
  if (ppo) {
    // The critic starts from the policy's weights with a fresh value head.
    PretrainedWithHead critic = load_pretrained_with_head(recipe.model.path, ScalarHeadKind::kValue,
                                                          policy_.device, policy_.dtype);
    critic_ = critic.model;
    value_head_ = critic.head;
    std::vector<at::Tensor> decay = critic_->decay_parameters();
    for (auto& parameter : value_head_->parameters()) decay.push_back(parameter);
    critic_optimizer_ = std::make_unique<Optimizer>(
        decay, critic_->no_decay_parameters(), recipe.optimizer,
        trainer.max_steps * grpo.num_iterations * grpo.num_mini_batches);
  }
  if (distributed.is_main() && trainer.tensorboard)
    tensorboard_ = std::make_unique<TensorBoardWriter>(run_dir.path());
}

GrpoTrainer::~GrpoTrainer() = default;

void GrpoTrainer::estimate_values(std::vector<TrainingSample>& samples, size_t begin,
                                  const std::vector<float>& rewards) {
  if (samples.size() <= begin) return;
  const GrpoConfig& grpo = recipe_.grpo;
  at::NoGradGuard no_grad;
  MicroBatch batch = make_micro_batch(samples, begin, samples.size());
  at::Tensor tokens = batch.tokens.to(policy_.device);
  at::Tensor attention = batch.attention_mask.to(policy_.device);
  at::Tensor values = value_head_->forward(critic_->forward_hidden(tokens, attention))
                          .to(at::kFloat)
                          .cpu();  // (B, L)
  // The value of the state before each target token, aligned with the loss mask.
  values = values.narrow(1, 0, values.size(1) - 1).contiguous();  // (B, L-1)
  at::Tensor token_rewards = at::zeros_like(values);  // the outcome reward on the last token
  for (size_t r = 0; r < samples.size() - begin; ++r) {
    const TrainingSample& sample = samples[begin + r];
    const int64_t completion = static_cast<int64_t>(sample.tokens.size()) - sample.prompt_length;
    if (completion > 0) token_rewards[r][sample.prompt_length - 2 + completion] = rewards[r];
  }
  GaeResult result = gae(token_rewards, values, batch.completion_mask, grpo.gamma, grpo.lam);
  for (size_t r = 0; r < samples.size() - begin; ++r) {
    TrainingSample& sample = samples[begin + r];
    const int64_t completion = static_cast<int64_t>(sample.tokens.size()) - sample.prompt_length;
    auto slice = [&](const at::Tensor& from) {
      at::Tensor part = from[r].narrow(0, sample.prompt_length - 1, completion).contiguous();
      return std::vector<float>(part.data_ptr<float>(), part.data_ptr<float>() + completion);
    };
    if (completion <= 0) continue;
    sample.token_advantages = slice(result.advantages);
    sample.returns = slice(result.returns);
    sample.old_values = slice(values);
  }
}

GrpoTrainer::Rollout GrpoTrainer::collect_rollout(int64_t step_index) {
  const GrpoConfig& grpo = recipe_.grpo;
  const int64_t group = grpo.num_generations;
  const int64_t prompts_global = recipe_.trainer.prompts_per_step;
  const int64_t prompts_local = prompts_global / distributed_.world_size();
  const int64_t first_local = prompts_local * distributed_.rank();
  SamplingParams params;
  params.temperature = grpo.temperature;
  params.top_p = grpo.top_p;
  params.top_k = grpo.top_k;
  params.min_p = grpo.min_p;
  params.max_new_tokens = grpo.max_completion_length;
  params.stop_strings = grpo.stop_strings;
  params.n = group;
  const EpisodeOptions episode_options{
      .environment = environment_->multi_turn() ? environment_.get() : nullptr,
      .max_turns = grpo.max_turns,
      .context_length = policy_.model->config().max_position_embeddings};

  Rollout rollout;
  double generate_seconds = 0, score_seconds = 0;
  int64_t generated_tokens = 0, rounds = 0, completions_seen = 0, truncated = 0, max_length = 0;
  double total_length = 0, model_turns = 0, observation_tokens = 0;
  std::map<std::string, double> reward_sums;
  int64_t reward_batches = 0;
  RewardTally tally(rewards_->size());
  std::vector<float> all_round_rewards;
  while (true) {
    // Every rank draws the same global tasks and keeps its own slice, so the
    // environment's position never depends on the number of ranks.
    std::vector<Task> tasks = environment_->next_tasks(prompts_global, environment_rng_);
    std::vector<Task> local(tasks.begin() + first_local,
                            tasks.begin() + first_local + prompts_local);
    std::vector<std::string> rendered;
    auto prompts = encode_prompts(local, *prompt_template_, *policy_.tokenizer,
                                  grpo.max_prompt_length, &rendered);
    params.seed = round_seed(recipe_.seed, step_index, rounds);
    auto start = Clock::now();
    std::vector<MultiTurnTrajectory> trajectories = sample_episodes(
        *rollout_, local, prompts, *policy_.tokenizer, params, episode_options, first_local);
    generate_seconds += seconds_since(start);

    start = Clock::now();
    std::vector<Sample> samples = episode_samples(local, rendered, trajectories, first_local);
    BatchScores scores = score_episodes(*rewards_, *reward_pool_, samples, trajectories);
    score_seconds += seconds_since(start);
    for (const auto& [name, value] : scores.metrics()) reward_sums[name] += value;
    ++reward_batches;
    tally.add(scores, trajectories, accuracy_reward_);

    at::Tensor rewards =
        at::tensor(std::vector<float>(scores.totals.begin(), scores.totals.end()), at::kFloat);
    // Advantages need the batch statistics of every rank for batch scaling.
    at::Tensor all_rewards = distributed_.all_gather(rewards);
    all_round_rewards.insert(all_round_rewards.end(), all_rewards.data_ptr<float>(),
                             all_rewards.data_ptr<float>() + all_rewards.numel());
    at::Tensor advantages =
        at::zeros({prompts_local * group}, at::kFloat);  // PPO: per token, below
    if (!critic_) {
      at::Tensor advantages_all =
          group_advantages(all_rewards, group, grpo.adv_estimator, grpo.scale_rewards);
      advantages = advantages_all.narrow(0, first_local * group, prompts_local * group);
    }
    const size_t round_begin = rollout.samples.size();
    std::vector<float> round_rewards;
    at::Tensor keep_group = grpo.filter_groups.enable ? groups_with_reward_spread(rewards, group)
                                                      : at::ones({prompts_local}, at::kBool);
    for (int64_t p = 0; p < prompts_local; ++p) {
      bool keep = keep_group[p].item<bool>() &&
                  static_cast<int64_t>(rollout.samples.size()) < prompts_local * group;
      for (int64_t s = 0; s < group; ++s) {
        const size_t i = static_cast<size_t>(p * group + s);
        MultiTurnTrajectory& trajectory = trajectories[i];
        const int64_t length = static_cast<int64_t>(trajectory.token_ids.size());
        generated_tokens += trajectory.model_tokens;
        total_length += static_cast<double>(length);
        max_length = std::max(max_length, length);
        model_turns += static_cast<double>(trajectory.model_turns);
        observation_tokens += static_cast<double>(length - trajectory.model_tokens);
        ++completions_seen;
        const bool was_truncated = trajectory.finish_reason == FinishReason::kLength;
        truncated += was_truncated;
        if (!keep) continue;
        TrainingSample sample;
        sample.tokens = prompts[p];
        sample.prompt_length = static_cast<int64_t>(prompts[p].size());
        sample.tokens.insert(sample.tokens.end(), trajectory.token_ids.begin(),
                             trajectory.token_ids.end());
        sample.old_logprobs = std::move(trajectory.logprobs);
        if (length > trajectory.model_tokens)
          sample.observation_mask = std::move(trajectory.observation_mask);
        sample.advantage = advantages[static_cast<int64_t>(i)].item<float>();
        sample.in_loss = !(grpo.mask_truncated_completions && was_truncated);
        round_rewards.push_back(static_cast<float>(scores.totals[i]));
        rollout.samples.push_back(std::move(sample));
        if (static_cast<int64_t>(rollout.logged.size()) < recipe_.trainer.log_completions &&
            distributed_.is_main()) {
          rollout.logged.push_back(
              {{"step", step_index},
               {"prompt", rendered[p]},
               {"completion", trajectory.text},
               {"reference", local[p].reference},
               {"reward", scores.totals[i]},
               {"advantage", rollout.samples.back().advantage},
               {"finish_reason", finish_reason_name(trajectory.finish_reason)}});
          if (episode_options.environment) rollout.logged.back()["turns"] = trajectory.model_turns;
        }
      }
    }
    if (critic_) estimate_values(rollout.samples, round_begin, round_rewards);
    ++rounds;
    if (!grpo.filter_groups.enable) break;
    // Dynamic sampling (DAPO): another round while any rank lacks full groups.
    at::Tensor missing = at::tensor(
        {static_cast<float>(prompts_local * group - static_cast<int64_t>(rollout.samples.size()))});
    distributed_.all_reduce_sum(missing);
    if (missing.item<float>() <= 0) break;
    if (grpo.filter_groups.max_num_gen_batches > 0 &&
        rounds >= grpo.filter_groups.max_num_gen_batches)
      break;
  }

  at::Tensor round_rewards = at::tensor(all_round_rewards, at::kFloat);
  RewardGroupStats stats = reward_group_stats(round_rewards, group);
  rollout.metrics = {
      {"reward", stats.reward},
      {"reward_std", stats.reward_std},
      {"frac_reward_zero_std", stats.frac_reward_zero_std},
      {"completions/mean_length", total_length / std::max<int64_t>(completions_seen, 1)},
      {"completions/max_length", static_cast<double>(max_length)},
      {"completions/clipped_ratio",
       static_cast<double>(truncated) / std::max<int64_t>(completions_seen, 1)},
      {"num_tokens", static_cast<double>(generated_tokens)},
      {"generation_rounds", static_cast<double>(rounds)},
      {"time/generate", generate_seconds},
      {"time/score", score_seconds}};
  if (episode_options.environment) {
    rollout.metrics["multi_turn/mean_turns"] = model_turns / std::max<int64_t>(completions_seen, 1);
    rollout.metrics["multi_turn/mean_observation_tokens"] =
        observation_tokens / std::max<int64_t>(completions_seen, 1);
  }
  // Reward components stay this rank's (their names vary by sample); the
  // per-reward statistics and accuracy below cover every rank.
  for (const auto& [name, sum] : reward_sums) rollout.metrics[name] = sum / reward_batches;
  tally.all_reduce(distributed_);
  tally.write(rollout.metrics);
  return rollout;
}

std::map<std::string, double> GrpoTrainer::update(std::vector<TrainingSample>& samples) {
  const GrpoConfig& grpo = recipe_.grpo;
  const int64_t budget = recipe_.trainer.max_tokens_per_microbatch;
  const int64_t group = grpo.num_generations;
  Transformer& model = policy_.model;
  const at::Device device = policy_.device;
  std::map<std::string, double> metrics;
  PolicyLossSums sums;
  double grad_norm_sum = 0, learning_rate = 0, skipped = 0;
  double value_loss_sum = 0, value_tokens = 0, value_clipped = 0;
  int64_t optimizer_steps = 0;
  double skipped_rows = 0, total_rows = 0;
  const bool shared = recipe_.trainer.shared_prompt_forward && !critic_;
  const bool skip_zero_advantage = grpo.skip_zero_advantage && !grpo.uses_reference_model() &&
                                   grpo.entropy_coeff == 0.0 && !critic_;

  // Mini-batches split whole groups. Every rank runs the same number of them
  // (some may be empty) so the collectives line up.
  const int64_t groups_local = static_cast<int64_t>(samples.size()) / group;
  const int64_t mini_batches = grpo.num_mini_batches;
  for (int64_t epoch = 0; epoch < grpo.num_iterations; ++epoch) {
    for (int64_t mini = 0; mini < mini_batches; ++mini) {
      const size_t begin = static_cast<size_t>(groups_local * mini / mini_batches * group);
      const size_t end = static_cast<size_t>(groups_local * (mini + 1) / mini_batches * group);
      LossNormalizer local_normalizer =
          count_loss_normalizer(samples, begin, end, grpo.max_completion_length);
      // The rows the forward and backward run on: all of them, or without the
      // ones that add nothing to the loss (see GrpoConfig::skip_zero_advantage).
      const std::vector<TrainingSample>* rows = &samples;
      size_t rows_begin = begin, rows_end = end;
      std::vector<TrainingSample> trained;
      if (skip_zero_advantage || shared) {
        for (size_t i = begin; i < end; ++i) {
          const TrainingSample& sample = samples[i];
          const bool empty = static_cast<int64_t>(sample.tokens.size()) <= sample.prompt_length;
          if (empty || (skip_zero_advantage && (!sample.in_loss || sample.advantage == 0.0f)))
            continue;
          trained.push_back(sample);
        }
        skipped_rows += static_cast<double>(end - begin - trained.size());
        rows = &trained;
        rows_begin = 0;
        rows_end = trained.size();
      }
      total_rows += static_cast<double>(end - begin);
      // Lanes get equal shares of the tokens their linear layers see: each
      // distinct prompt once on the shared-prompt path, padded rows otherwise.
      auto row_of = [&](size_t i) {
        return PromptAndCompletion{(*rows)[i].tokens, (*rows)[i].prompt_length};
      };
      auto linear_tokens = [&](size_t a, size_t b) {
        double tokens = 0;
        size_t longest = 0;
        for (size_t i = a; i < b; ++i) {
          const PromptAndCompletion row = row_of(i);
          longest = std::max(longest, row.tokens.size());
          const bool shares_prompt = i > a && same_prompt(row_of(i - 1), row);
          tokens +=
              static_cast<double>(row.tokens.size() - (shares_prompt ? row.prompt_length : 0));
        }
        return shared ? tokens : static_cast<double>(longest * (b - a));
      };
      auto plan =
          lanes_->spread(plan_micro_batches(*rows, rows_begin, rows_end, budget), linear_tokens);
      std::vector<MicroBatch> batches;
      std::vector<SharedPrefixBatch> packed;
      for (const auto& [a, b] : plan) {
        if (!shared) {
          batches.push_back(make_micro_batch(*rows, a, b));
          continue;
        }
        batches.push_back(make_completion_micro_batch(*rows, a, b));
        std::vector<PromptAndCompletion> sequences;
        for (size_t i = a; i < b; ++i) sequences.push_back(row_of(i));
        packed.push_back(make_shared_prefix_batch(sequences));
      }
      at::Tensor counts =
          at::tensor({local_normalizer.tokens, local_normalizer.sequences}, at::kDouble);
      distributed_.all_reduce_sum(counts);
      LossNormalizer normalizer{counts[0].item<double>(), counts[1].item<double>(),
                                grpo.max_completion_length};

      optimizer_->zero_grad();
      if (critic_optimizer_) critic_optimizer_->zero_grad();
      if (normalizer.tokens <= 0) batches.clear();  // nothing in the loss on any rank
      // The policy's parameters, then the critic's (PPO): the order of each
      // micro-batch's gradient list.
      std::vector<at::Tensor> parameters = model->parameters();
      const size_t policy_count = parameters.size();
      if (critic_) {
        for (auto& parameter : critic_->parameters()) parameters.push_back(parameter);
        for (auto& parameter : value_head_->parameters()) parameters.push_back(parameter);
      }
      std::vector<PolicyLossSums> batch_sums(batches.size());
      std::vector<std::array<double, 3>> batch_values(batches.size(),
                                                      {0, 0, 0});  // loss, tokens, clipped
      auto gradients_of = [&](int64_t index) {
        MicroBatch& batch = batches[index];
        at::Tensor tokens, attention, targets;
        SharedPrefixBatch layout;
        if (shared) {
          layout = packed[index].to(device);
          targets = layout.targets;  // (B, C)
        } else {
          tokens = batch.tokens.to(device);
          attention = batch.attention_mask.to(device);
          targets = tokens.narrow(1, 1, tokens.size(1) - 1);  // (B, L-1)
        }
        // Logits of every target: (B, C, V) shared-prompt, (B, L-1, V) padded.
        auto target_logits = [&](Transformer& network) {
          AutocastGuard autocast(device, at::kBFloat16, recipe_.trainer.bf16);
          if (shared) return shared_prefix_logits(*network, layout);
          at::Tensor all = network->forward(tokens, attention);
          return all.narrow(1, 0, all.size(1) - 1);
        };
        // Outside the guard: token_logprobs and token_entropy work in float32 whatever the forward
        // ran in.
        at::Tensor logits = target_logits(model);
        PolicyLossInputs inputs;
        inputs.logprobs = token_logprobs(logits, targets, grpo.temperature);
        inputs.old_logprobs = batch.old_logprobs.to(device);
        inputs.advantages =
            (batch.token_advantages.defined() ? batch.token_advantages : batch.advantages)
                .to(device);
        inputs.mask = batch.loss_mask.to(device);
        inputs.entropy = grpo.entropy_coeff != 0.0 ? token_entropy(logits, grpo.temperature)
                                                   : logged_entropy(logits, grpo.temperature);
        if (reference_) {
          at::NoGradGuard no_grad;
          inputs.ref_logprobs =
              token_logprobs(target_logits(reference_), targets, grpo.temperature);
        }
        PolicyLossOutput output = policy_loss(inputs, grpo, normalizer);
        batch_sums[index] = output.sums;
        std::vector<at::Tensor> gradients(parameters.size());
        gradients_into(gradients, output.loss, parameters, 0, policy_count);
        if (critic_ && batch.old_values.defined()) {
          at::Tensor values =
              value_head_->forward(critic_->forward_hidden(tokens, attention)).to(at::kFloat);
          values = values.narrow(1, 0, values.size(1) - 1);  // (B, L-1)
          ValueLossOutput value =
              value_loss(values, batch.old_values.to(device), batch.returns.to(device), inputs.mask,
                         grpo, normalizer);
          gradients_into(gradients, value.loss, parameters, policy_count, parameters.size());
          batch_values[index] = {value.loss.item<double>(), value.tokens, value.clipped};
        }
        return gradients;
      };
      lanes_->run(static_cast<int64_t>(batches.size()), gradients_of, parameters);
      for (size_t index = 0; index < batches.size(); ++index) {
        sums += batch_sums[index];
        value_loss_sum += batch_values[index][0];
        value_tokens += batch_values[index][1];
        value_clipped += batch_values[index][2];
      }
      if (critic_optimizer_) {
        std::vector<at::Tensor> critic_gradients;
        std::vector<at::Tensor> critic_parameters = critic_->parameters();
        for (auto& parameter : value_head_->parameters()) critic_parameters.push_back(parameter);
        for (auto& parameter : critic_parameters) {
          if (!parameter.grad().defined()) parameter.mutable_grad() = at::zeros_like(parameter);
          critic_gradients.push_back(parameter.grad());
        }
        distributed_.all_reduce_sum(critic_gradients);
        critic_optimizer_->step();
      }
      std::vector<at::Tensor> gradients;
      for (auto& parameter : model->parameters()) {
        if (!parameter.grad().defined()) parameter.mutable_grad() = at::zeros_like(parameter);
        gradients.push_back(parameter.grad());
      }
      distributed_.all_reduce_sum(gradients);
      OptimizerStepStats step_stats;
      weights_->publish([&](Transformer&) { step_stats = optimizer_->step(); });
      grad_norm_sum += step_stats.grad_norm;
      learning_rate = step_stats.learning_rate;
      skipped += step_stats.skipped;
      ++optimizer_steps;
      if (step_stats.skipped) log_warning() << "non-finite gradient norm: update skipped";
    }
  }
  at::Tensor totals = at::tensor({sums.tokens, sums.clipped_low, sums.clipped_high, sums.clipped,
                                  sums.kl, sums.entropy, sums.ratio, sums.dual_clipped},
                                 at::kDouble);
  distributed_.all_reduce_sum(totals);
  double tokens = std::max(totals[0].item<double>(), 1.0);
  metrics["clip_ratio/low_mean"] = totals[1].item<double>() / tokens;
  metrics["clip_ratio/high_mean"] = totals[2].item<double>() / tokens;
  metrics["clip_ratio/region_mean"] = totals[3].item<double>() / tokens;
  metrics["kl"] = totals[4].item<double>() / tokens;
  metrics["entropy"] = totals[5].item<double>() / tokens;
  metrics["ratio_mean"] = totals[6].item<double>() / tokens;
  metrics["clip_ratio/dual_mean"] = totals[7].item<double>() / tokens;
  metrics["grad_norm"] = grad_norm_sum / std::max<int64_t>(optimizer_steps, 1);
  metrics["learning_rate"] = learning_rate;
  metrics["skipped_updates"] = skipped;
  // Completions the forward and backward left out: nothing of them in the loss.
  metrics["learner/skipped_completions"] = total_rows > 0 ? skipped_rows / total_rows : 0.0;
  if (critic_) {
    metrics["critic/vf_loss"] = value_loss_sum / std::max<int64_t>(optimizer_steps, 1);
    metrics["critic/vf_clipfrac"] = value_tokens > 0 ? value_clipped / value_tokens : 0.0;
  }
  return metrics;
}

nlohmann::json GrpoTrainer::step(int64_t step_index) {
  auto step_start = Clock::now();
  Rollout rollout = collect_rollout(step_index);
  auto learn_start = Clock::now();
  std::map<std::string, double> learn_metrics = update(rollout.samples);
  double learn_seconds = seconds_since(learn_start);
  const GrpoConfig& grpo = recipe_.grpo;
  if (reference_ && grpo.ref_model_sync_steps > 0 && step_index % grpo.ref_model_sync_steps == 0) {
    reference_ = clone_model(policy_.model);
  }
  nlohmann::json line = {{"step", step_index}};
  for (const auto& [name, value] : rollout.metrics) line[name] = value;
  for (const auto& [name, value] : learn_metrics) line[name] = value;
  line["time/learn"] = learn_seconds;
  double step_seconds = seconds_since(step_start);
  line["time/step"] = step_seconds;
  at::Tensor tokens = at::tensor({rollout.metrics["num_tokens"]}, at::kDouble);
  distributed_.all_reduce_sum(tokens);
  line["num_tokens"] = tokens.item<double>();
  line["tokens_per_second"] = tokens.item<double>() / std::max(step_seconds, 1e-9);
  if (distributed_.is_main()) run_dir_.log_samples(rollout.logged);
  return line;
}

EvaluationResult GrpoTrainer::evaluate() {
  EvaluationOptions options =
      recipe_evaluation_options(recipe_.grpo, recipe_.trainer, recipe_.seed, *environment_,
                                policy_.model->config().max_position_embeddings);
  options.accuracy_reward = accuracy_reward_;
  return evaluate_policy(*rollout_, environment_->eval_tasks(), *prompt_template_,
                         *policy_.tokenizer, *rewards_, *reward_pool_, options);
}

void GrpoTrainer::save_checkpoint(int64_t step_index) {
  if (!distributed_.is_main()) return;
  RunCheckpoint checkpoint;
  checkpoint.policy = policy_.model;
  checkpoint.tokenizer = policy_.tokenizer.get();
  checkpoint.optimizer = optimizer_.get();
  if (reference_ && recipe_.grpo.ref_model_sync_steps > 0)
    checkpoint.extra_models.emplace("reference", reference_);
  if (critic_) {
    checkpoint.extra_models.emplace("critic", critic_);
    checkpoint.extra_heads.emplace("critic", value_head_);
    checkpoint.extra_optimizers.emplace("critic_optimizer", critic_optimizer_.get());
  }
  checkpoint.state = {{"step", step_index},
                      {"environment_rng", save_rng(environment_rng_)},
                      {"torch_rng", save_torch_rng()},
                      {"weights_version", weights_->version.load()},
                      {"recipe", write_config(const_cast<Recipe&>(recipe_))}};
  auto folder = save_run_checkpoint(run_dir_.path(), checkpoint, recipe_.trainer.save_total_limit);
  log_info() << "checkpoint " << folder.string();
}

int64_t GrpoTrainer::restore_checkpoint() {
  auto folder = latest_run_checkpoint(run_dir_.path());
  if (!folder) {
    log_warning() << "--resume: no checkpoint in " << run_dir_.path().string()
                  << "; starting from step 0";
    return 0;
  }
  nlohmann::json state = read_json_file((*folder / "trainer_state.json").string());
  const int64_t step = state.at("step").get<int64_t>();
  weights_->publish([&](Transformer& model) { load_weights_into(model, *folder / "model"); });
  weights_->version = state.value("weights_version", int64_t{0});
  optimizer_->load(*folder / "optimizer");
  restore_rng(environment_rng_, state.at("environment_rng").get<std::string>());
  restore_torch_rng(state.at("torch_rng").get<std::string>());
  if (reference_) {
    if (std::filesystem::exists(*folder / "reference"))
      load_weights_into(reference_, *folder / "reference");
  }
  if (critic_) {
    if (!std::filesystem::exists(*folder / "critic")) {
      throw_data_error(folder->string() +
                       ": a ppo checkpoint needs critic/ (the value model); it is missing");
    }
    load_weights_into(critic_, value_head_, *folder / "critic");
    critic_optimizer_->load(*folder / "critic_optimizer");
  }
  log_info() << "resumed from " << folder->string() << " at step " << step;
  return step;
}

void GrpoTrainer::train(bool resume) {
  const TrainerConfig& trainer = recipe_.trainer;
  int64_t done = 0;
  if (resume) done = restore_checkpoint();
  auto log_line = [&](nlohmann::json line) {
    if (!distributed_.is_main()) return;
    run_dir_.log_metrics(line);
    if (tensorboard_) {
      std::map<std::string, double> scalars;
      for (const auto& [key, value] : line.items()) {
        if (key != "step" && value.is_number()) scalars[key] = value.get<double>();
      }
      tensorboard_->add_scalars(line["step"].get<int64_t>(), scalars);
    }
  };
  auto run_evaluation = [&](int64_t step_index) {
    if (distributed_.is_main()) {
      EvaluationResult result = evaluate();
      nlohmann::json line = {{"step", step_index}};
      for (const auto& [name, value] : result.metrics()) line[name] = value;
      log_line(line);
      log_info() << "eval at step " << step_index << ": accuracy " << result.accuracy << ", reward "
                 << result.reward << " over " << result.tasks << " tasks";
    }
    distributed_.barrier();
  };
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
    bool last = step_index == trainer.max_steps;
    if ((trainer.eval_steps > 0 && step_index % trainer.eval_steps == 0) ||
        (last && trainer.eval_steps == 0) ||
        (last && trainer.max_steps % std::max<int64_t>(trainer.eval_steps, 1) != 0)) {
      run_evaluation(step_index);
    }
    if ((trainer.save_steps > 0 && step_index % trainer.save_steps == 0) || last)
      save_checkpoint(step_index);
  }
  progress.finish();
  if (distributed_.is_main()) {
    std::filesystem::path final_folder = run_dir_.path() / "final";
    save_pretrained(policy_.model, final_folder);
    policy_.tokenizer->save_folder(final_folder);
    log_info() << "final policy written to " << final_folder.string();
    if (critic_) {
      // An HF folder with v_head.summary.*: load_pretrained_with_head(..., kValue) reads it back.
      save_pretrained(critic_, final_folder / "critic", {.head = value_head_});
      policy_.tokenizer->save_folder(final_folder / "critic");
      log_info() << "final value model written to " << (final_folder / "critic").string();
    }
  }
}

void run_grpo_stage(const Recipe& recipe, RunDir& run_dir, const TrainOptions& options) {
  auto distributed = Distributed::from_environment(resolve_device(recipe.model.device));
  GrpoTrainer trainer(recipe, run_dir, *distributed);
  trainer.train(options.resume);
}

REGISTER_STAGE("grpo", run_grpo_stage);
REGISTER_STAGE("ppo", run_grpo_stage);

}  // namespace r1kit
